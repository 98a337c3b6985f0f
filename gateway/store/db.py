"""The gateway's one SQLite database: opening it, migrating it, noticing other writers.

Every durable fact (allowlist entries, audit log, and what later features add) lives in
``<data_dir>/gateway.db``. Connections use WAL (readers never block the proxy's writer),
foreign keys, and a busy timeout so the CLI and the running gateway can write at the same
time. Migrations are numbered and applied in one transaction each; ``PRAGMA user_version``
records the last one applied, so a crash mid-migration leaves the previous version intact.

The running gateway learns about changes another process (the CLI) committed by polling
``PRAGMA data_version`` (:class:`ChangeWatcher`), which changes exactly when another
connection commits: a cheap query, no file watching.

**A full disk.** Opening a WAL database needs its ``-wal`` and ``-shm`` files (SQLite
gives "disk I/O error" when it cannot size them), so after a clean stop a full disk would
prevent opening it at all. :func:`connect` then opens the existing database read-only
(``immutable``: no lock or shared-memory file is needed; nobody can change it while the
disk is full) and marks the connection :attr:`GatewayConnection.read_only`: everything
can be read, nothing written. A write on such a connection, or one that fails because the
disk is full, raises :class:`DiskFullError`, whose message says "the disk holding <data
directory> is full" - what the log, the CLI, the admin app and ``/healthz`` say.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from gateway.store.migrations import MIGRATIONS


class StoreError(Exception):
    """The database cannot be opened or written; the message says why."""


class DiskFullError(StoreError, sqlite3.OperationalError):
    """A write failed (or cannot be tried) because the data directory's disk is full.

    Also a :class:`sqlite3.OperationalError`, so code that handles a failed write goes on
    handling this one."""


# Less free space than this on the data directory's file system counts as a full disk:
# SQLite needs room for a few pages of write-ahead log to write anything.
FULL_BELOW_BYTES = 1024 * 1024
_FULL_CODES = {
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_CANTOPEN,
}


class GatewayConnection(sqlite3.Connection):
    """A connection that knows its data directory, whether it can only read, and what
    to do once the open write transaction commits (:func:`after_commit`)."""

    data_dir: Path = Path(".")
    read_only: bool = False
    on_commit: list[Callable[[], None]] | None = None


def free_bytes(directory: Path) -> int | None:
    """Free space on the file system holding ``directory`` (None if unknown)."""
    try:
        stat = os.statvfs(directory)
    except OSError:
        return None
    # root may fill the blocks reserved for it; anyone else only the available ones.
    blocks = stat.f_bfree if os.geteuid() == 0 else stat.f_bavail
    return blocks * stat.f_frsize


def disk_full(directory: Path) -> bool:
    free = free_bytes(directory)
    return free is not None and free < FULL_BELOW_BYTES


def disk_full_message(data_dir: Path) -> str:
    """The one sentence every part of the gateway uses for a full disk."""
    return f"the disk holding {data_dir} is full"


def is_disk_full_error(error: BaseException, data_dir: Path) -> bool:
    """Whether ``error`` is a failed write or open that a full disk explains."""
    if isinstance(error, DiskFullError):
        return True
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        if code is None or (code & 0xFF) not in _FULL_CODES:
            return False
        return (code & 0xFF) == sqlite3.SQLITE_FULL or disk_full(data_dir)
    if isinstance(error, OSError):
        return error.errno == errno.ENOSPC
    return False


def _disk_full_error(data_dir: Path) -> DiskFullError:
    return DiskFullError(
        f"{disk_full_message(data_dir)}; nothing was changed. Free some space and try "
        "again (no restart is needed)"
    )


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data directory, readable only by the gateway's user."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)
    except OSError as error:
        raise StoreError(f"cannot create data directory {data_dir}: {error.strerror}") from None


# How long a write waits for another process's lock: the CLI and the admin app, which a
# person waits for anyway.
BUSY_TIMEOUT = 10.0
# The proxy's own connection and its background writes wait no longer than this: a lock
# held by another process (a CLI command, a backup, an operator's sqlite3) delays them,
# they are retried later, and no request ever waits for it.
SHORT_BUSY_TIMEOUT = 0.1


def connect(path: Path, *, busy_timeout: float = BUSY_TIMEOUT) -> sqlite3.Connection:
    """Open (and if needed create and migrate) the database at ``path``.

    ``busy_timeout`` is how long a statement waits for a lock another connection holds
    before it fails with "database is locked".
    """
    prepare_data_dir(path.parent)
    conn: GatewayConnection | None = None
    try:
        conn = sqlite3.connect(
            path,
            timeout=busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            factory=GatewayConnection,
        )
        conn.data_dir = path.parent
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        migrate(conn)
    except sqlite3.Error as error:
        if conn is not None:
            conn.close()
        if path.exists() and is_disk_full_error(error, path.parent):
            return _connect_read_only(path)
        raise StoreError(f"cannot open database {path}: {error}") from None
    for suffix in ("", "-wal", "-shm"):
        file = Path(f"{path}{suffix}")
        if file.exists():
            os.chmod(file, 0o600)
    return conn


def _connect_read_only(path: Path) -> GatewayConnection:
    """The existing database, read-only, on a full disk (see the module docstring)."""
    wal = Path(f"{path}-wal")
    # With an unfinished write-ahead log the newest changes are in it: read it the usual
    # way if its shared-memory file is there; without that, the last checkpoint is all
    # that can be read.
    modes = ["ro", "ro&immutable=1"] if wal.exists() and wal.stat().st_size else ["ro&immutable=1"]
    error: sqlite3.Error | None = None
    for mode in modes:
        try:
            conn = sqlite3.connect(
                f"file:{quote(str(path))}?mode={mode}",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                factory=GatewayConnection,
            )
            conn.data_dir = path.parent
            conn.read_only = True
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as failed:
            error = failed
            continue
        if version != len(MIGRATIONS):
            conn.close()
            raise StoreError(
                f"cannot open database {path}: {disk_full_message(path.parent)}, and the "
                f"database needs migrating (version {version} of {len(MIGRATIONS)})"
            )
        return conn
    raise StoreError(f"cannot open database {path}: {disk_full_message(path.parent)} ({error})")


def read_only(conn: sqlite3.Connection) -> bool:
    """Whether ``conn`` was opened read-only because the disk was full."""
    return bool(getattr(conn, "read_only", False))


def set_busy_timeout(conn: sqlite3.Connection, seconds: float) -> None:
    """Change how long statements on ``conn`` wait for another connection's lock."""
    conn.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations the database has not seen yet; return the resulting version."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise StoreError(
            f"database schema version {version} is newer than this gateway knows "
            f"({len(MIGRATIONS)}); run the newer gateway or restore a backup"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        with transaction(conn):
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
    return len(MIGRATIONS)


def _statements(script: str) -> Iterator[str]:
    # executescript() would commit on its own; split so each migration is one transaction.
    for statement in script.split(";"):
        if statement.strip():
            yield statement


def after_commit(conn: sqlite3.Connection, action: Callable[[], None]) -> None:
    """Run ``action`` once what was just written is committed: at the end of the open
    :func:`transaction`, not at all if it rolls back, and at once outside a transaction
    (each statement commits on its own there)."""
    pending: list[Callable[[], None]] | None = getattr(conn, "on_commit", None)
    if conn.in_transaction and pending is not None:
        pending.append(action)
    else:
        action()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction; taken immediately so concurrent writers queue, not fail.

    On a full disk it raises :class:`DiskFullError` (nothing was changed)."""
    data_dir: Path | None = getattr(conn, "data_dir", None)
    if read_only(conn) and data_dir is not None:
        raise _disk_full_error(data_dir)
    try:
        conn.execute("BEGIN IMMEDIATE")
        pending: list[Callable[[], None]] = []
        if isinstance(conn, GatewayConnection):
            conn.on_commit = pending
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
        finally:
            if isinstance(conn, GatewayConnection):
                conn.on_commit = None
        for action in pending:
            action()
    except sqlite3.Error as error:
        if data_dir is not None and not isinstance(error, DiskFullError):
            if is_disk_full_error(error, data_dir):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise _disk_full_error(data_dir) from error
        raise


class ChangeWatcher:
    """Tells whether another connection has committed since the last call."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._seen = self._data_version()

    def _data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def changed(self) -> bool:
        current = self._data_version()
        if current != self._seen:
            self._seen = current
            return True
        return False
