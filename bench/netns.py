"""Network namespaces of their own for gateways that cannot share one, and the small
receivers notifications are sent to.

WireGuard's firewall table (``inet cemm_gateway_wg``) has one name per namespace: two
gateways with WireGuard in one namespace would rewrite each other's table on every check.
So each configuration of the idle scenario lives in a namespace of its own: a holder
process (``unshare --net sleep``) keeps it alive, and :meth:`Netns.inside` moves the
calling thread into it for as long as the ``with`` lasts - every socket made and every
process started meanwhile (simulator, Pebble, gateway) belongs to it. Threads started
inside stay there (a thread inherits its creator's namespace).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.procs import Procs, bring_loopback_up, wait_until


class Netns:
    """A network namespace held open by a process this run started."""

    def __init__(self, procs: Procs, name: str) -> None:
        own = os.stat("/proc/self/ns/net").st_ino
        self.process = procs.start(f"netns-{name}", ["unshare", "--net", "sleep", "infinity"])
        path = f"/proc/{self.process.pid}/ns/net"
        wait_until(lambda: os.stat(path).st_ino != own, 10)
        self._fd = os.open(path, os.O_RDONLY)
        with self.inside():
            bring_loopback_up()

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        back = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            os.setns(self._fd, os.CLONE_NEWNET)
            yield
        finally:
            os.setns(back, os.CLONE_NEWNET)
            os.close(back)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


class Receiver:
    """An HTTP receiver that answers every POST with 200 (Apprise's ``json://``)."""

    def __init__(self) -> None:
        self.received = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.received += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class DeadReceiver:
    """A TCP port that accepts every connection and never answers: the worst receiver
    (a refused connection fails at once; this one holds the sender until its timeout)."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = int(self._socket.getsockname()[1])
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._closed:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(connection)  # read nothing, answer nothing, never close

    def hanging(self) -> int:
        """Connections the sender still holds open, waiting for an answer."""
        count = 0
        for connection in list(self._held):
            try:
                if connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                    continue  # the sender gave up and closed it
                count += 1  # it sent its request and waits
            except BlockingIOError:
                count += 1
            except OSError:
                continue
        return count

    def close(self) -> None:
        self._closed = True
        for connection in [self._socket, *self._held]:
            with contextlib.suppress(OSError):
                connection.close()


def wait_for(check: object, timeout: float, what: str) -> None:
    """:func:`bench.procs.wait_until` with a message that says what did not happen."""
    started = time.monotonic()
    try:
        wait_until(check, timeout, 0.05)
    except TimeoutError:
        raise TimeoutError(f"{what}: not within {time.monotonic() - started:.0f} s") from None
