"""An idle gateway is not woken for nothing: each timer that used to tick a few times a
second now waits for a reason, and still acts at once when the reason comes.

Every test here has both halves: nothing happens while nothing changes (measured over a
stretch several times the old tick), and the change is acted on promptly (a generous
deadline, measured from the change).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import uvicorn
from mitmproxy.test import tflow

from addons.connection_registry import ConnectionRegistry
from addons.ticker import Ticker
from gateway.clock import ManualClock
from gateway.services import audit
from gateway.settings import Settings
from gateway.settings.model import UpstreamSettings
from gateway.store import db, file_events
from gateway.tasks import wireguard_check
from gateway.tasks.session_sweeper import SessionSweeper
from gateway.tasks.state_watcher import StateWatcher
from gateway.upstream.monitor import UpstreamMonitor
from gateway.waiting import wait_at_most
from gateway.web.server import AdminServer
from gateway.wireguard.interface import WireguardError
from tests.support.proxy_state import proxy_state

QUIET = 0.6  # more than the old ticks (0.1 s uvicorn, 0.25 s reloads, 0.5 s deadlines)
PROMPT = 2.0  # generous: a loaded CI machine


async def _within(seconds: float, condition: Any) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not within {seconds} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def _idle_until_watched(
    runs: list[float], *, watch: Callable[[], None], unwatch: Callable[[], None]
) -> None:
    """A timer that runs while something is watched: not one run while nothing is, runs
    promptly once ``watch()`` is called, and none again soon after ``unwatch()``."""
    await asyncio.sleep(QUIET)
    assert runs == []  # nothing watched: not one wake-up
    watch()
    await _within(PROMPT, lambda: len(runs) >= 3)
    unwatch()
    await asyncio.sleep(0.1)
    settled = len(runs)
    await asyncio.sleep(QUIET)
    assert len(runs) == settled  # idle again


def test_a_ticker_sleeps_while_nothing_is_watched_and_checks_once_woken() -> None:
    watched: list[str] = []
    checks: list[float] = []

    async def main() -> None:
        ticker = Ticker(
            "test deadlines",
            busy=lambda: bool(watched),
            interval=lambda: 0.05,
            check=checks.append,
            monotonic=time.monotonic,
        )
        ticker.start()

        def watch() -> None:
            watched.append("a request")
            ticker.wake()

        await _idle_until_watched(checks, watch=watch, unwatch=watched.clear)
        ticker.stop()

    asyncio.run(main())


def test_the_database_files_wake_the_watcher_and_other_files_do_not(tmp_path: Path) -> None:
    database = tmp_path / "gateway.db"

    async def main() -> None:
        events = file_events.watch(database)
        assert events is not None, "inotify is available on this machine"
        try:
            (tmp_path / "gateway.log").write_text("a line")
            (tmp_path / "notes").mkdir()
            await events.wait(QUIET)
            assert not events.changed.is_set()
            (tmp_path / "gateway.db-wal").write_bytes(b"a commit")
            await events.wait(PROMPT)
            assert events.changed.is_set()
        finally:
            events.close()

    asyncio.run(main())


def test_the_monitor_sleeps_until_its_next_check_unless_a_port_fails() -> None:
    state = proxy_state()
    monitor = UpstreamMonitor(
        UpstreamSettings(host="192.168.2.34", health_interval=30.0),
        state,
        clock=ManualClock(1_736_428_623.0),
        jitter=lambda: 0.0,
    )

    async def main() -> float:
        waiting = asyncio.create_task(monitor.wait_for_next_check())
        await asyncio.sleep(QUIET)
        assert not waiting.done()
        failed_at = time.monotonic()
        state.port_failed(80, 1_736_428_624.0)
        await asyncio.wait_for(waiting, PROMPT)
        return time.monotonic() - failed_at

    assert asyncio.run(main()) < PROMPT


def test_the_web_server_wakes_once_a_second_and_stops_at_once() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
        raise AssertionError("no request is made")

    async def main() -> tuple[int, float]:
        server = AdminServer(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
        ticks = 0
        tick = server.on_tick

        async def counted(counter: int) -> bool:
            nonlocal ticks
            ticks += 1
            return await tick(counter)

        server.on_tick = counted  # type: ignore[method-assign]
        serving = asyncio.create_task(server.serve())
        await _within(PROMPT, lambda: server.started)
        await asyncio.sleep(1.5)
        stop_at = time.monotonic()
        server.should_exit = True
        await asyncio.wait_for(serving, PROMPT)
        return ticks, time.monotonic() - stop_at

    ticks, stopping = asyncio.run(main())
    assert 2 <= ticks <= 4  # uvicorn's own loop: 16 in the same 1.5 s
    assert stopping < 0.5  # not a tick later


class _Manager:
    def __init__(self, quiet: float) -> None:
        self.wake = asyncio.Event()
        self.quiet = quiet
        self.checks = 0

    def quiet_for(self, *, heard: bool) -> float:
        return self.quiet if heard else 0.0

    async def check(self) -> None:
        self.checks += 1


class _QuietKernel:
    """netlink as heard, but reporting nothing: other tests change this machine's
    interfaces and nftables meanwhile, and those reports are not the test's."""

    links = firewall = True

    def close(self) -> None: ...


def test_the_wireguard_check_waits_for_a_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wireguard_check.netlink, "watch", lambda changed: _QuietKernel())

    async def main() -> None:
        manager = _Manager(quiet=30.0)
        task = asyncio.create_task(wireguard_check.run(manager, interval=0.05))  # type: ignore[arg-type]
        await asyncio.sleep(QUIET)
        assert manager.checks == 0
        manager.wake.set()  # what the database or the kernel does
        await _within(PROMPT, lambda: manager.checks == 1)
        await asyncio.sleep(QUIET)
        assert manager.checks == 1
        task.cancel()

    asyncio.run(main())


def _python_prints(code: str) -> list[str]:
    """What ``code`` prints, word by word, run in a fresh interpreter (imports counted from
    nothing, the collector untouched by the tests before)."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.split()


def test_the_proxy_engine_leaves_mitmproxys_unused_addons_unimported() -> None:
    code = (
        "import sys; import gateway.proxy.engine; "
        "print(sorted(m for m in ('flask', 'ldap3', 'mitmproxy.addons.onboarding') "
        "if m in sys.modules)); "
        "import mitmproxy.addons; print(len(mitmproxy.addons.default_addons()) > 20)"
    )
    assert _python_prints(code) == ["[]", "True"]


def test_features_that_are_not_configured_leave_their_libraries_unimported() -> None:
    """What every gateway imports (the CLI, the composition root, the web app with its
    portal and admin pages) leaves out the libraries of single sign-on, passkeys and
    notifications, nor segno until a QR code is drawn: those load when the feature is
    configured or first used. Nor does it load httpx's command-line tool (rich), installed
    here beside the development tools."""
    code = (
        "import sys; import gateway.cli, gateway.app, gateway.startup, gateway.web.app; "
        "print(sorted(m for m in ('authlib', 'joserfc', 'webauthn', 'apprise', 'rich', "
        "'segno') if m in sys.modules)); "
        "import gateway.auth.oidc_client; print('authlib' in sys.modules)"
    )
    assert _python_prints(code) == ["[]", "True"]


class Watched(NamedTuple):
    watcher: StateWatcher
    rounds: list[float]
    """When each round ran (monotonic)."""


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[Watched]:
    """A state watcher over a fresh database whose rounds are only counted."""
    settings = Settings(data_dir=tmp_path, reload_interval=0.05)
    conn = db.connect(settings.database_path)
    watcher = StateWatcher(conn, settings, clock=ManualClock(100.0), disk_full=False)
    rounds: list[float] = []

    async def counted() -> None:
        rounds.append(time.monotonic())

    watcher.watch_once = counted  # type: ignore[method-assign]
    try:
        yield Watched(watcher, rounds)
    finally:
        watcher.close()


def test_the_state_watcher_waits_for_a_commit_then_reloads_promptly(watched: Watched) -> None:
    watcher, rounds = watched

    async def main() -> float:
        task = asyncio.create_task(watcher.run())
        await asyncio.sleep(QUIET)  # 12 rounds' worth of reload_interval
        assert rounds == []
        other = db.connect(watcher.settings.database_path)
        committed = time.monotonic()
        with db.transaction(other):
            audit.record(other, "cli", "allowlist.add", clock=ManualClock(100.0))
        other.close()
        await _within(PROMPT, lambda: rounds)
        task.cancel()
        return rounds[0] - committed

    assert asyncio.run(main()) < PROMPT


def test_after_the_kernels_word_the_watcher_looks_again_until_the_commit_shows(
    watched: Watched,
) -> None:
    # A commit's first write wakes the watcher before the commit is visible; it must look
    # again every reload_interval for a while, or the change would wait for the disk check.
    watcher, rounds = watched

    async def main() -> None:
        task = asyncio.create_task(watcher.run())
        await asyncio.sleep(0.2)
        journal = watcher.settings.database_path.with_name("gateway.db-journal")
        journal.write_bytes(b"")  # a write the kernel reports
        written = time.monotonic()
        await asyncio.sleep(1.0)
        task.cancel()
        looks = [t - written for t in rounds]
        assert len(looks) >= 5, looks  # one look every 0.05-0.1 s, not one look and quiet

    asyncio.run(main())


def test_a_failed_wireguard_check_is_tried_again_soon() -> None:
    class Failing(_Manager):
        async def check(self) -> None:
            self.checks += 1
            raise WireguardError("nft: Operation not permitted")

    async def main() -> None:
        manager = Failing(quiet=30.0)
        task = asyncio.create_task(wireguard_check.run(manager, interval=0.05))  # type: ignore[arg-type]
        manager.wake.set()
        await _within(PROMPT, lambda: manager.checks >= 3)  # not 30 s apart
        task.cancel()

    asyncio.run(main())


def test_the_session_sweeper_sleeps_while_no_connection_is_open() -> None:
    state = proxy_state()
    registry = ConnectionRegistry(state)
    sweeper = SessionSweeper(state, registry, None, clock=ManualClock(100.0))  # type: ignore[arg-type]
    rounds: list[float] = []
    sweeper.sweep = lambda: rounds.append(time.monotonic())  # type: ignore[method-assign]
    client = tflow.tclient_conn()

    async def main() -> None:
        task = asyncio.create_task(sweeper.run(0.05))
        await _idle_until_watched(
            rounds,
            watch=lambda: registry.add(client, "web", "192.168.2.50"),
            unwatch=lambda: registry.client_disconnected(client),
        )
        task.cancel()

    asyncio.run(main())


def test_a_limited_wait_says_whether_the_event_came() -> None:
    async def main() -> None:
        event = asyncio.Event()
        started = time.monotonic()
        assert not await wait_at_most(event, 0.05)
        assert time.monotonic() - started >= 0.04
        asyncio.get_running_loop().call_later(0.05, event.set)
        started = time.monotonic()
        assert await wait_at_most(event, 30.0)
        assert time.monotonic() - started < PROMPT
        # No time left: no wait, only a look.
        assert await wait_at_most(event, 0.0)
        event.clear()
        assert not await wait_at_most(event, -1.0)

    asyncio.run(main())


def test_what_start_up_leaves_in_cycles_is_collected_and_the_rest_frozen() -> None:
    code = (
        "import gc, weakref; from gateway.system.heap import freeze_start_up\n"
        "class Node: pass\n"
        "gc.disable(); node = Node(); node.me = node; gone = weakref.ref(node); del node\n"
        "kept = [Node() for _ in range(3)]\n"
        "freeze_start_up(); print(gone() is None, gc.get_freeze_count() >= 3)"
    )
    assert _python_prints(code) == ["True", "True"]
