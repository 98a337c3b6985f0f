"""The recorder's rule: a write another process's lock refuses is kept in memory, merged
with what was counted meanwhile, and written on a later round; the lock costs the caller
at most the short busy timeout."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from gateway.services import sessions, users
from gateway.services.recorder import Recorder
from gateway.store import db
from gateway.store.worker import DbWorker
from tests.support.proxy_state import proxy_state


def _database(path: Path) -> str:
    conn = db.connect(path)
    user = users.add_user(conn, "anna", role="user", password="Lang-genoeg-wachtwoord-1", actor="t")
    _, session = sessions.create_session(
        conn, user, lifetime=3600, client_address=None, user_agent=None, method="password"
    )
    conn.close()
    return session.id


def _last_seen(path: Path, session_id: str) -> float:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT last_seen_at FROM session WHERE id = ?", (session_id,))
        return float(row.fetchone()[0])


def test_a_locked_database_keeps_activity_in_memory_until_it_can_be_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.db"
    session_id = _database(path)
    state = proxy_state()
    hits: dict[int, tuple[int, float]] = {}
    worker = DbWorker(path, busy_timeout=db.SHORT_BUSY_TIMEOUT)
    recorder = Recorder(worker, state, drain_hits=lambda: hits)
    seen = time.time() + 1000
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        state.touch_session(session_id, seen - 5)

        async def locked() -> float:
            started = time.monotonic()
            await recorder.flush_activity()
            return time.monotonic() - started

        took = asyncio.run(locked())
        assert took < 2.0  # the short busy timeout, not the CLI's 10 s
        assert "session activity" in recorder.failing
        # Kept, and the newer time counted meanwhile wins.
        state.touch_session(session_id, max(state.session_activity[session_id], seen))
        assert state.session_activity == {session_id: seen}
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    asyncio.run(recorder.flush_activity())
    assert recorder.failing == {}
    assert state.session_activity == {}
    assert _last_seen(path, session_id) == seen
    worker.close()


def test_audit_entries_wait_for_the_lock_and_keep_their_time(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    _database(path)
    worker = DbWorker(path, busy_timeout=db.SHORT_BUSY_TIMEOUT)
    recorder = Recorder(worker, proxy_state(), drain_hits=dict)
    holder = sqlite3.connect(path, isolation_level=None)

    async def record_locked() -> None:
        holder.execute("BEGIN IMMEDIATE")
        recorder.record_audit("system", "upstream.clock_drift", drift=3.0)
        await recorder.wait(timeout=5)
        holder.execute("ROLLBACK")
        await recorder.flush_audit()

    before = time.time()
    asyncio.run(record_locked())
    holder.close()
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT at FROM audit_log WHERE event = 'upstream.clock_drift'"
        ).fetchall()
    assert len(rows) == 1
    assert before - 1 <= rows[0][0] <= before + 1
    worker.close()


def test_audit_entries_queued_during_a_write_are_written_by_it(tmp_path: Path) -> None:
    # record_audit starts no second job while one is in flight: that one writes them.
    path = tmp_path / "gateway.db"
    _database(path)
    worker = DbWorker(path, busy_timeout=db.SHORT_BUSY_TIMEOUT)
    recorder = Recorder(worker, proxy_state(), drain_hits=dict)

    async def record_two() -> None:
        recorder.record_audit("system", "acme.challenge_answered", client="192.0.2.1")
        await asyncio.sleep(0)  # the first write is in flight
        recorder.record_audit("system", "acme.challenge_answered", client="192.0.2.2")
        await recorder.wait(timeout=5)

    asyncio.run(record_two())
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT detail FROM audit_log WHERE event = 'acme.challenge_answered'"
        ).fetchall()
    assert len(rows) == 2
    worker.close()
