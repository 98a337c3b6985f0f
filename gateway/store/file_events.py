"""Word from the kernel when the database's files change (Linux inotify).

The state watcher must notice what other processes (the CLI, the web app's worker, the
recorder) commit to ``gateway.db``. Instead of asking SQLite a few times a second, it waits
for the kernel to say that one of the database's files was written, and asks then: an idle
gateway is not woken. Every commit writes to the database's files (``-wal`` in WAL mode,
``-journal`` or the file itself otherwise) with ``write(2)``, which inotify reports;
SQLite's shared-memory index is mapped memory and reports nothing, so reads never wake
the watcher.

Three system calls through :mod:`ctypes`: a library would add a dependency for what the C
library already offers. Where inotify is missing or its limits are used up,
:func:`watch` returns None and the caller polls as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import struct
from pathlib import Path

from gateway.waiting import wait_at_most

logger = logging.getLogger("cemm_gateway")

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name


class FileEvents:
    """Set :attr:`changed` whenever a file of ``names`` in a directory is written."""

    def __init__(self, fd: int, names: frozenset[str], loop: asyncio.AbstractEventLoop) -> None:
        self._fd = fd
        self._names = names
        self._loop = loop
        self.changed = asyncio.Event()
        self.lost = False
        """The kernel no longer reports (the directory went away, the descriptor failed):
        the caller polls from now on."""
        loop.add_reader(fd, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self._fd, 64 * 1024)
        except BlockingIOError:
            return
        except OSError:
            self._lose()
            return
        offset = 0
        while offset + _EVENT.size <= len(data):
            _, mask, _, length = _EVENT.unpack_from(data, offset)
            name = data[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0")
            offset += _EVENT.size + length
            if mask & IN_IGNORED:  # the watch is gone (directory removed or unmounted)
                self._lose()
                return
            # An overflowed queue may have dropped one of ours: a change, to be safe.
            if mask & IN_Q_OVERFLOW or name.decode(errors="replace") in self._names:
                self.changed.set()

    def _lose(self) -> None:
        self.lost = True
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._fd)
        self.changed.set()

    async def wait(self, timeout: float) -> bool:
        """Until a watched file changed or ``timeout`` seconds passed; whether one did
        (:attr:`changed` is set)."""
        return await wait_at_most(self.changed, timeout)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._fd)
        with contextlib.suppress(OSError):
            os.close(self._fd)


def watch(path: Path) -> FileEvents | None:
    """Watch the database at ``path`` (and its ``-wal``/``-journal`` files); None where
    inotify cannot be had (then the caller polls)."""
    # SQLite follows a symbolic link and keeps its -wal beside the file it points to.
    path = path.resolve()
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, AttributeError):
        return None
    if fd < 0:
        logger.info("no inotify (%s): the database is polled", os.strerror(ctypes.get_errno()))
        return None
    directory = str(path.parent).encode()
    if libc.inotify_add_watch(fd, directory, _MASK) < 0:
        logger.info(
            "cannot watch %s (%s): the database is polled",
            path.parent,
            os.strerror(ctypes.get_errno()),
        )
        os.close(fd)
        return None
    names = frozenset({path.name, f"{path.name}-wal", f"{path.name}-journal"})
    return FileEvents(fd, names, asyncio.get_running_loop())
