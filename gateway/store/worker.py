"""Database and password work for the web app, off the event loop.

The proxy and the web app share one event loop; an argon2 verification (~100 ms) or a
busy database there would stall every proxied request. The web app therefore runs service
calls on one worker thread with a connection of its own: calls are serialised (a home
gateway's logins do not need parallelism) and the connection is never shared between
threads.

The proxy's own background writes (session activity, allowlist hit counts, purges, audit
entries of the upstream monitor) go through a second worker whose connection waits at most
:data:`~gateway.store.db.SHORT_BUSY_TIMEOUT` for another process's lock: a failed write is
kept in memory by its caller and retried on the next round.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gateway.store import db


class DbWorker:
    def __init__(
        self, path: Path, *, busy_timeout: float = db.BUSY_TIMEOUT, name: str = "gateway-db"
    ) -> None:
        self._path = path
        self._busy_timeout = busy_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None

    def _call[T](
        self, function: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> T:
        if (
            self._conn is not None
            and db.read_only(self._conn)
            and not db.disk_full(self._path.parent)
        ):
            # Opened read-only on a full disk; there is room again: write as usual.
            self._conn.close()
            self._conn = None
        if self._conn is None:
            self._conn = db.connect(self._path, busy_timeout=self._busy_timeout)
        return function(self._conn, *args, **kwargs)

    async def run[T](self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function(connection, *args, **kwargs)`` on the worker thread, in a copy of the
        caller's context (as ``asyncio.to_thread``): the audit log's requester goes along."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        return await loop.run_in_executor(
            self._executor, functools.partial(context.run, self._call, function, args, kwargs)
        )

    async def call[T](self, function: Callable[..., T], *args: Any) -> T:
        """A function that needs no connection (password hashing) on the same thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    def close(self) -> None:
        def close_connection() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        self._executor.submit(close_connection)
        self._executor.shutdown(wait=True)
