"""gateway/tasks: each background job, one round at a time, without the event loop's
timers (the rounds are called directly)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from gateway.clock import ManualClock
from gateway.services import audit
from gateway.settings import Settings
from gateway.store import db
from gateway.tasks import every, wireguard_check
from gateway.tasks.audit_purge import AuditPurge
from gateway.tasks.session_sweeper import SessionSweeper
from gateway.tasks.state_watcher import StateWatcher
from gateway.tasks.usage_flush import ACTIVITY_INTERVAL, HITS_INTERVAL, UsageFlush
from gateway.wireguard.interface import WireguardError
from tests.support.proxy_state import proxy_state


class FakeRecorder:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, kind: str, job: Any) -> bool:
        self.started.append(kind)
        return True

    async def flush_hits(self) -> None: ...
    async def flush_activity(self) -> None: ...
    async def save_held(self) -> None: ...
    async def purge(self, **limits: float) -> None: ...


class FakeLogins:
    def __init__(self) -> None:
        self.enforced = 0
        self.refreshed = 0

    def enforce(self) -> int:
        self.enforced += 1
        return 0

    async def refresh(self) -> None:
        self.refreshed += 1


class FakeRegistry:
    def __init__(self, live: set[str]) -> None:
        self.live = live
        self.enforced: list[int] = []

    def websocket_sessions(self) -> set[str]:
        return self.live

    def enforce(self, policy: Any) -> int:
        self.enforced.append(policy.generation)
        return 0


def test_the_sweeper_counts_an_open_websocket_as_use_and_enforces() -> None:
    state, logins = proxy_state(), FakeLogins()
    sweeper = SessionSweeper(state, FakeRegistry({"s1"}), logins, clock=ManualClock(42.0))  # type: ignore[arg-type]
    sweeper.sweep()
    assert dict(state.session_activity) == {"s1": 42.0}
    assert logins.enforced == 1


def test_the_usage_flush_writes_each_kind_when_it_is_due() -> None:
    recorder, now = FakeRecorder(), [0.0]
    flush = UsageFlush(recorder, disk_full=lambda: False, monotonic=lambda: now[0])  # type: ignore[arg-type]
    asyncio.run(flush.flush_due())
    assert recorder.started == []
    now[0] = HITS_INTERVAL
    asyncio.run(flush.flush_due())
    assert recorder.started == ["hits"]
    now[0] = ACTIVITY_INTERVAL
    asyncio.run(flush.flush_due())
    assert recorder.started == ["hits", "hits", "activity"]


def test_the_purge_uses_the_configured_limits() -> None:
    recorder = FakeRecorder()
    AuditPurge(recorder, Settings().auth).purge()  # type: ignore[arg-type]
    assert recorder.started == ["purge"]


def test_every_keeps_going_after_a_failing_round(caplog: pytest.LogCaptureFixture) -> None:
    rounds: list[int] = []

    async def job() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("broken")
        if len(rounds) == 3:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(every(0, job, what="the test job"))
    assert rounds == [0, 1, 2]
    assert "the test job failed" in caplog.text


def test_the_state_watcher_reloads_after_another_connection_commits(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    conn = db.connect(settings.database_path)
    watcher = StateWatcher(conn, settings, clock=ManualClock(100.0), disk_full=False)
    state, registry, logins = proxy_state(), FakeRegistry(set()), FakeLogins()
    watcher.connect(state, registry, logins, access=lambda: state.access, wireguard=None)  # type: ignore[arg-type]
    asyncio.run(watcher.watch_once())  # the first round loads the policy
    assert registry.enforced == [1] and logins.refreshed == 0
    asyncio.run(watcher.watch_once())  # nothing changed
    assert registry.enforced == [1]
    other = db.connect(settings.database_path)
    with db.transaction(other):
        audit.record(other, "cli", "allowlist.add", clock=ManualClock(100.0))
    other.close()
    asyncio.run(watcher.watch_once())
    assert registry.enforced == [1, 2] and state.policy.generation == 2
    assert logins.refreshed == 1
    watcher.close()


def test_a_failing_wireguard_check_is_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        async def check(self) -> None:
            raise WireguardError("nft: Operation not permitted")

    with caplog.at_level(logging.WARNING):
        asyncio.run(wireguard_check.check_once(Broken()))  # type: ignore[arg-type]
    assert "WireGuard check failed, trying again in 2 s: nft: Operation" in caplog.text
    assert "Traceback" not in caplog.text
