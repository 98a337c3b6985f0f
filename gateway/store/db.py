"""The gateway's one SQLite database: opening it, migrating it, noticing other writers.

Every durable fact (allowlist entries, audit log, and what later features add) lives in
``<data_dir>/gateway.db``. Connections use WAL (readers never block the proxy's writer),
foreign keys, and a busy timeout so the CLI and the running gateway can write at the same
time. Migrations are numbered and applied in one transaction each; ``PRAGMA user_version``
records the last one applied, so a crash mid-migration leaves the previous version intact.

The running gateway learns about changes another process (the CLI) committed by polling
``PRAGMA data_version`` (:class:`ChangeWatcher`), which changes exactly when another
connection commits: a cheap query, no file watching.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.store.migrations import MIGRATIONS


class StoreError(Exception):
    """The database cannot be opened or written; the message says why."""


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
    try:
        conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        migrate(conn)
    except sqlite3.Error as error:
        raise StoreError(f"cannot open database {path}: {error}") from None
    for suffix in ("", "-wal", "-shm"):
        file = Path(f"{path}{suffix}")
        if file.exists():
            os.chmod(file, 0o600)
    return conn


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


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction; taken immediately so concurrent writers queue, not fail."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


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
