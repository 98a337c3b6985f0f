"""Database and password work for the web app, off the event loop.

The proxy and the web app share one event loop; an argon2 verification (~100 ms) or a
busy database there would stall every proxied request. The web app therefore runs service
calls on one worker thread with a connection of its own: calls are serialised (a home
gateway's logins do not need parallelism) and the connection is never shared between
threads.
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
    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-db")
        self._conn: sqlite3.Connection | None = None

    def _call[T](
        self, function: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> T:
        if self._conn is None:
            self._conn = db.connect(self._path)
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
