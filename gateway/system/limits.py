"""Process limits: the open-file limit raised at start-up, and what happens at it.

Every proxied connection holds two file descriptors (client and CEMM side), and a phone's
dashboard keeps a WebSocket open: the common soft limit of 1,024 open files would stop the
gateway accepting at about 500 connections while the hard limit (often 524,288) allows far
more. The soft limit is raised to the hard limit, never beyond it, as nginx's
``worker_rlimit_nofile`` or systemd's defaults do for network daemons.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import socket
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("cemm_gateway")


def raise_open_file_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY or soft >= hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as error:
        logger.warning("could not raise the open-file limit from %d to %d: %s", soft, hard, error)
        return soft
    return hard


# How long the gateway stops accepting when it is out of descriptors (asyncio's own
# pause, ``asyncio.constants.ACCEPT_RETRY_DELAY``, is the same).
ACCEPT_PAUSE = 1.0
# At most one log line per this many seconds while the limit is hit.
LIMIT_LOG_INTERVAL = 60.0
#: What the machine, not a peer, answers when it has no descriptor, buffer or memory left.
OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class AcceptGuard:
    """What the gateway does when ``accept()`` finds no free descriptor.

    asyncio's selector loop (``BaseSelectorEventLoop._accept_connection``, CPython 3.12 and
    3.13) reports an out-of-descriptors ``accept()`` to the loop's exception handler - a
    traceback in the log - and then keeps calling ``accept()`` up to ``backlog`` times in
    the same pass, scheduling a retry for each failure: at the limit that wrote tens of
    thousands of traceback lines in seconds and burnt CPU. This guard replaces the accept
    handler of one running loop (an instance attribute; the loop's own method is
    untouched) with the same loop that, on the first such failure, stops accepting on that
    socket for :data:`ACCEPT_PAUSE` seconds and returns. Waiting clients stay in the
    kernel's backlog meanwhile. It logs one line when the limit is first hit and then at
    most one line a minute, with how often it paused; nothing while the limit is not hit.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        pause: float = ACCEPT_PAUSE,
        log_interval: float = LIMIT_LOG_INTERVAL,
        limit: Callable[[], int] | None = None,
    ) -> None:
        self.loop = loop
        self.pause = pause
        self.log_interval = log_interval
        self._limit = limit or (lambda: resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        self.pauses = 0  # since the last line
        self.total = 0
        self._logged_at: float | None = None
        self._installed = False

    def install(self) -> bool:
        """Replace the loop's accept handler; False if the loop has none to replace."""
        if not hasattr(self.loop, "_accept_connection2"):
            return False
        self.loop._accept_connection = self._accept_connection  # type: ignore[attr-defined]
        self._installed = True
        return True

    def uninstall(self) -> None:
        if self._installed:
            with contextlib.suppress(AttributeError):
                del self.loop._accept_connection  # type: ignore[attr-defined]
            self._installed = False

    def _accept_connection(
        self,
        protocol_factory: Any,
        sock: socket.socket,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        *args: Any,
    ) -> None:
        loop: Any = self.loop
        for _ in range(backlog):
            try:
                conn, addr = sock.accept()
                conn.setblocking(False)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as error:
                if error.errno not in OUT_OF_RESOURCES:
                    raise
                loop._remove_reader(sock.fileno())
                loop.call_later(
                    self.pause,
                    self._resume,
                    protocol_factory,
                    sock,
                    sslcontext,
                    server,
                    backlog,
                    *args,
                )
                self._note(error)
                return
            else:
                loop.create_task(
                    loop._accept_connection2(
                        protocol_factory, conn, {"peername": addr}, sslcontext, server, *args
                    )
                )

    def _resume(self, protocol_factory: Any, sock: socket.socket, *args: Any) -> None:
        if sock.fileno() == -1:  # the listener was closed meanwhile
            return
        loop: Any = self.loop
        loop._add_reader(sock.fileno(), self._accept_connection, protocol_factory, sock, *args)

    def _note(self, error: OSError) -> None:
        self.pauses += 1
        self.total += 1
        now = time.monotonic()
        if self._logged_at is not None and now - self._logged_at < self.log_interval:
            return
        first = self._logged_at is None
        self._logged_at = now
        logger.warning(
            "out of file descriptors (open-file limit %d, %s): new connections wait %g s "
            "before they are accepted; %d pause%s %s",
            self._limit(),
            error.strerror or error,
            self.pause,
            self.pauses,
            "" if self.pauses == 1 else "s",
            "so far" if first else f"in the last {self.log_interval:g} s",
        )
        self.pauses = 0
