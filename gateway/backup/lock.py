"""The running instance's lock on its data directory: ``<data_dir>/gateway.lock``.

The gateway holds an exclusive ``flock`` on this file from start to stop
(:func:`hold`); a restore takes the same lock before it touches anything, so it refuses
while a gateway runs on that data directory, and a gateway cannot start in the middle of a
restore. The kernel drops the lock when the process ends however it ends (SIGKILL too), so
a stale lock file is harmless; the file itself is never removed. The management commands
(``cemm-gateway user ...``) do not take it: they work beside the running gateway.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from gateway.backup.contents import LOCK_FILE
from gateway.backup.sealed import BackupError

__all__ = ["LOCK_FILE", "DataDirInUse", "InstanceLock", "hold"]


class InstanceLock:
    """An exclusive lock on a data directory, held until :meth:`release`."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    def __del__(self) -> None:
        self.release()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


class DataDirInUse(BackupError):
    """Another process - a running gateway, or a restore - holds the data directory."""


def hold(data_dir: Path) -> InstanceLock:
    """Take the data directory's lock, or raise :class:`DataDirInUse` at once."""
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirInUse(
            f"a gateway is running on {data_dir} (or a restore is under way): it holds "
            f"{path}. Stop it first (e.g. docker compose stop gateway, then run the "
            "command with docker compose run --rm gateway cemm-gateway ...)"
        ) from None
    return InstanceLock(fd, path)
