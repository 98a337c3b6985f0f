"""The proxy's background writes: never on the event loop, never waited for by a request.

The proxy counts what it sees in memory (when each session and API token was last used,
allowlist hits) and this recorder writes it in batches, on a worker thread of its own
whose connection waits at most :data:`gateway.store.db.SHORT_BUSY_TIMEOUT` for another
process's lock. The rules:

- A write that fails (another process holds the write lock, the disk is full) changes
  nothing in force: what it would have written stays in memory, merged with what was
  counted meanwhile, and goes with the next round. Nothing is lost while the process runs.
- At most one write of each kind is in flight; a round that finds the previous one still
  running leaves its data in memory for the next.
- The purge of expired records and the audit entries of background work (the upstream
  monitor's) go the same way; an audit entry that cannot be written is kept (at most
  :data:`MAX_PENDING_AUDIT`, the oldest dropped first with a warning) and retried.
- One warning per kind when writes start failing and one line when they work again, not
  a line per round.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from gateway.auth.bruteforce import BruteForcePolicy
from gateway.clock import SYSTEM_CLOCK, Clock, ManualClock
from gateway.proxy.state import ProxyState
from gateway.services import allowlist as allowlist_service
from gateway.services import api_tokens, audit, bans, held, sessions
from gateway.store.db import transaction
from gateway.store.worker import DbWorker

logger = logging.getLogger("cemm_gateway")

MAX_PENDING_AUDIT = 1000
# An audit entry waiting to be written: when, who, what, the details.
type PendingAudit = tuple[float, str, str, dict[str, Any]]

Hits = dict[int, tuple[int, float]]


def _merge_hits(older: Hits, newer: Hits) -> Hits:
    merged = dict(newer)
    for key, (count, last) in older.items():
        now_count, now_last = merged.get(key, (0, 0.0))
        merged[key] = (count + now_count, max(last, now_last))
    return merged


class Recorder:
    def __init__(
        self,
        worker: DbWorker,
        state: ProxyState,
        *,
        drain_hits: Callable[[], Hits],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.worker = worker
        self.state = state
        self.clock = clock
        self._drain_hits = drain_hits
        self._pending_hits: Hits = {}
        self._pending_audit: list[PendingAudit] = []
        self._running: dict[str, asyncio.Task[None]] = {}
        self._failing: dict[str, str] = {}

    # -- scheduling -------------------------------------------------------------------
    def start(self, kind: str, job: Callable[[], Any]) -> bool:
        """Run ``job()`` (a coroutine function) unless a job of this kind is in flight."""
        running = self._running.get(kind)
        if running is not None and not running.done():
            return False
        self._running[kind] = asyncio.create_task(job(), name=f"record {kind}")
        return True

    async def wait(self, timeout: float) -> None:
        """Wait (bounded) for the writes in flight."""
        tasks = [task for task in self._running.values() if not task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    def _failed(self, kind: str, error: Exception) -> None:
        message = str(error)
        if self._failing.get(kind) != message:
            logger.warning("could not record %s (kept in memory, retried): %s", kind, message)
        self._failing[kind] = message

    def _succeeded(self, kind: str) -> None:
        if self._failing.pop(kind, None) is not None:
            logger.info("recording %s works again", kind)

    @property
    def failing(self) -> dict[str, str]:
        """Kinds of write that failed last time, with the error."""
        return dict(self._failing)

    # -- the writes -------------------------------------------------------------------
    async def flush_activity(self) -> None:
        state = self.state
        activity, used = state.take_activity()
        if not activity and not used:
            return

        def write(conn: sqlite3.Connection) -> None:
            sessions.record_activity(conn, activity)
            api_tokens.record_use(conn, used)

        try:
            await self.worker.run(write)
        except Exception as error:
            # Newer times counted meanwhile win; both are kept for the next round.
            state.keep_activity(activity, used)
            self._failed("session activity", error)
        else:
            self._succeeded("session activity")

    async def flush_hits(self) -> None:
        hits = _merge_hits(self._pending_hits, self._drain_hits())
        self._pending_hits = {}
        if not hits:
            return
        try:
            await self.worker.run(allowlist_service.add_hits, hits)
        except Exception as error:
            self._pending_hits = _merge_hits(hits, self._pending_hits)
            self._failed("allowlist hit counts", error)
        else:
            self._succeeded("allowlist hit counts")

    async def purge(self, *, idle_timeout: float, window: float, retention_days: float) -> None:
        now = self.clock.now()

        def write(conn: sqlite3.Connection) -> None:
            sessions.purge(conn, now=now, idle_timeout=idle_timeout)
            bans.purge(conn, now=now, policy=BruteForcePolicy(window=window))
            audit.purge(conn, before=now - retention_days * 86400.0)

        try:
            await self.worker.run(write)
        except Exception as error:
            self._failed("the purge of expired records", error)
        else:
            self._succeeded("the purge of expired records")

    def record_audit(self, actor: str, event: str, **detail: Any) -> None:
        """Queue an audit entry of background work; written by :meth:`flush_audit`."""
        self._pending_audit.append((self.clock.now(), actor, event, detail))
        if len(self._pending_audit) > MAX_PENDING_AUDIT:
            dropped = self._pending_audit.pop(0)
            logger.warning("audit entry %s dropped: too many waiting to be written", dropped[2])
        self.start("audit", self.flush_audit)

    async def flush_audit(self) -> None:
        def write(conn: sqlite3.Connection, entries: list[PendingAudit]) -> None:
            with transaction(conn):
                for at, actor, event, detail in entries:
                    # Dated when it happened, not when it could be written.
                    audit.record(conn, actor, event, clock=ManualClock(at), **detail)

        # Entries queued while a write is in flight find this job running (record_audit
        # starts none then): they are written before it ends.
        while self._pending_audit:
            entries, self._pending_audit = self._pending_audit, []
            try:
                await self.worker.run(write, entries)
            except Exception as error:
                self._pending_audit = entries + self._pending_audit
                del self._pending_audit[:-MAX_PENDING_AUDIT]
                self._failed("audit entries", error)
                return
            self._succeeded("audit entries")

    async def save_held(self) -> None:
        """Save the cut-offs held while the disk was full (:mod:`gateway.services.held`)."""
        if not held.pending():
            return
        try:
            await self.worker.run(held.replay)
        except Exception as error:
            self._failed("revocations held in memory", error)
        else:
            if held.pending():
                self._failed("revocations held in memory", RuntimeError("the disk is full"))
            else:
                self._succeeded("revocations held in memory")

    def pending(self) -> bool:
        """Whether anything counted waits to be written."""
        return bool(
            self.state.session_activity
            or self.state.token_activity
            or self._pending_hits
            or self._pending_audit
        )
