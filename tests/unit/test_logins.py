"""gateway/logins.py: one session changes in memory at once; every other change is a
re-read off the event loop, and changes made while it runs are not lost."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from gateway.auth import tokens
from gateway.clock import ManualClock
from gateway.logins import Logins
from gateway.policy.credentials import AuthSnapshot, SessionInfo
from tests.support.proxy_state import proxy_state


def _session(session_id: str) -> SessionInfo:
    return SessionInfo(
        id=session_id,
        user_id=1,
        user_name="anna",
        role="admin",
        csrf_token="csrf",
        created_at=1.0,
        last_seen_at=1.0,
        expires_at=9e9,
        client_address=None,
        user_agent=None,
    )


class FakeRegistry:
    def __init__(self, sessions: set[str]) -> None:
        self.sessions = sessions
        self.closed: list[str] = []

    def enforce_credentials(
        self, session_ok: Callable[[str], bool], token_ok: Callable[[str], bool]
    ) -> int:
        ended = [s for s in sorted(self.sessions) if not session_ok(s)]
        self.closed += ended
        self.sessions -= set(ended)
        return len(ended)


class FakeWorker:
    """Stands in for the DbWorker: each read returns ``snapshot``, off the event loop (a
    thread), and waits for ``release`` first when a test wants it to."""

    def __init__(self, snapshot: AuthSnapshot) -> None:
        self.snapshot = snapshot
        self.reads = 0
        self.release: threading.Event | None = None
        self.thread: str | None = None

    async def run(self, function: Any, **kwargs: Any) -> AuthSnapshot:
        def read() -> AuthSnapshot:
            self.thread = threading.current_thread().name
            if self.release is not None:
                self.release.wait(5)
            self.reads += 1
            return self.snapshot

        return await asyncio.to_thread(read)


def _logins(snapshot: AuthSnapshot, live: set[str]) -> tuple[Logins, Any, FakeRegistry, Any]:
    state = proxy_state()
    registry = FakeRegistry(live)
    worker = FakeWorker(snapshot)
    logins = Logins(state, registry, worker, idle_timeout=3600, clock=ManualClock(100.0))  # type: ignore[arg-type]
    return logins, state, registry, worker


def test_a_login_is_in_force_at_once_without_a_read() -> None:
    logins, state, _, worker = _logins(AuthSnapshot(), set())
    logins.session_started("cookie-token", _session("s1"))
    assert state.auth.sessions[tokens.token_hash("cookie-token")].id == "s1"
    assert worker.reads == 0


def test_a_logout_closes_the_sessions_websockets_at_once() -> None:
    logins, state, registry, worker = _logins(AuthSnapshot(), {"s1", "s2"})
    logins.session_started("t1", _session("s1"))
    logins.session_started("t2", _session("s2"))
    logins.session_ended("s1")
    assert [info.id for info in state.auth.sessions.values()] == ["s2"]
    assert registry.closed == ["s1"]
    assert worker.reads == 0


def _during_a_read(logins: Logins, worker: FakeWorker, change: Callable[[], None]) -> None:
    worker.release = threading.Event()

    async def scenario() -> None:
        logins.changed()
        await asyncio.sleep(0.05)  # the read is waiting on its thread
        change()
        assert worker.release is not None
        worker.release.set()
        await logins.settled()

    asyncio.run(scenario())


def test_a_read_runs_off_the_event_loop_and_keeps_a_login_made_meanwhile() -> None:
    # The read began before the login was committed: its snapshot lacks the session.
    logins, state, _, worker = _logins(AuthSnapshot(generation=7), set())
    _during_a_read(logins, worker, lambda: logins.session_started("t1", _session("s1")))
    assert worker.thread != threading.main_thread().name
    assert worker.reads == 1
    assert [info.id for info in state.auth.sessions.values()] == ["s1"]


def test_a_read_keeps_a_logout_made_meanwhile() -> None:
    # The read began before the logout was committed: its snapshot still has the session.
    logins, state, registry, worker = _logins(AuthSnapshot(sessions={"h": _session("s1")}), {"s1"})
    _during_a_read(logins, worker, lambda: logins.session_ended("s1"))
    assert dict(state.auth.sessions) == {}
    assert registry.closed == ["s1"]


def test_a_change_during_a_read_starts_one_more() -> None:
    logins, _, _, worker = _logins(AuthSnapshot(), set())
    _during_a_read(logins, worker, logins.changed)
    assert worker.reads == 2


def test_a_read_closes_what_it_no_longer_admits() -> None:
    logins, state, registry, _ = _logins(AuthSnapshot(), {"s1"})
    logins.session_started("t1", _session("s1"))
    asyncio.run(logins.refresh())  # the database no longer has s1 (revoked by the CLI)
    assert registry.closed == ["s1"]
    assert dict(state.auth.sessions) == {}
