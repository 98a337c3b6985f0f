"""The upstream monitor: following the CEMM by MAC, health, drift episodes - no sockets.

Devices are a dict the test edits between checks; the clock, the neighbour table and the
probe are fakes, so every case runs in milliseconds.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.policy.access import AccessConfig
from gateway.policy.allowlist import CompiledAllowlist
from gateway.policy.names import OwnNames
from gateway.proxy.state import Limits, PolicySnapshot, ProxyState, UpstreamTarget
from gateway.services import audit
from gateway.settings import UpstreamSettings
from gateway.store import db
from gateway.system import commands
from gateway.upstream.discovery import Discovery
from gateway.upstream.health import ApiCheck, Identity, PortCheck
from gateway.upstream.monitor import UpstreamMonitor

MAC = "80:1F:12:47:06:B0"
OTHER = "02:00:00:00:00:01"


class Lan:
    """The devices on the LAN, as the fakes report them."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        # address -> (MAC, device clock skew); absent = nothing answers there
        self.devices: dict[str, tuple[str, float]] = {}
        # what the neighbour table shows: address -> MAC (may be stale on purpose)
        self.neighbours: dict[str, str] = {}
        self.asked: list[str] = []
        self.probes = 0

    async def check_api(self, address: str) -> ApiCheck:
        self.asked.append(address)
        device = self.devices.get(address)
        if device is None:
            return ApiCheck(address, answered=False, error="no answer (timed out)")
        mac, skew = device
        now = self.clock.now()
        return ApiCheck(
            address,
            answered=True,
            status=200,
            response_time=0.004,
            identity=Identity(mac, int(now + skew)),
            drift=int(now + skew) + 0.5 - now,
        )

    async def check_websocket(self, address: str) -> PortCheck:
        if address in self.devices:
            return PortCheck(address, answered=True, handshake=True, response_time=0.002)
        return PortCheck(address, answered=False, error="no answer (timed out)")

    async def runner(self, argv: Sequence[str], **kwargs: object) -> commands.CommandResult:
        rows = [
            {"dst": a, "dev": "eth0", "lladdr": m.lower(), "state": ["REACHABLE"]}
            for a, m in self.neighbours.items()
        ]
        return commands.CommandResult(tuple(argv), 0, json.dumps(rows), "")

    async def connect(self, address: str, port: int, timeout: float) -> bool:
        if address == "192.168.2.1":
            self.probes += 1
        if address in self.devices:
            # The probe's connection makes the kernel learn the device's MAC.
            self.neighbours[address] = self.devices[address][0]
            return True
        return False


def _state(host: str = "") -> ProxyState:
    empty = CompiledAllowlist.from_networks([])
    return ProxyState(
        listeners={},
        policy=PolicySnapshot(empty, empty, empty),
        upstream=UpstreamTarget(host=host, http_port=80, ws_port=8090, connect_timeout=2.0),
        limits=Limits(16384, 0),
        access=AccessConfig(empty, OwnNames(), 80),
        session_cookie="cemm_session",
    )


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = db.connect(tmp_path / "data" / "gateway.db")
    yield connection
    connection.close()


class Env:
    def __init__(self, conn: sqlite3.Connection, **settings: object) -> None:
        self.clock = ManualClock(1_736_428_623.0)
        self.lan = Lan(self.clock)
        self.conn = conn
        self.settings = UpstreamSettings(**{"health_interval": 10.0, **settings})
        self.state = _state(self.settings.host)
        self.mono = 0.0
        self.monitor = UpstreamMonitor(
            self.settings,
            self.state,
            conn=conn,
            clock=self.clock,
            checker=self.lan,
            discovery=Discovery(
                mac=self.settings.mac,
                http_port=80,
                check=self.lan.check_api,
                probe_subnet=self.settings.probe_subnet,
                runner=self.lan.runner,
                connect=self.lan.connect,
            ),
            sleep=self._sleep,
            monotonic=lambda: self.mono,
            jitter=lambda: 0.5,
        )

    async def _sleep(self, seconds: float) -> None:
        self.mono += seconds
        self.clock.advance(seconds)

    def check(self) -> None:
        asyncio.run(self.monitor.check_once())

    def events(self, prefix: str = "upstream.") -> list[tuple[str, dict[str, object]]]:
        return [
            (entry.event, entry.detail)
            for entry in reversed(audit.entries(self.conn))
            if entry.event.startswith(prefix)
        ]


def test_nothing_is_forwarded_until_the_mac_is_confirmed(conn: sqlite3.Connection) -> None:
    env = Env(conn, mac=MAC, host="192.168.2.34")
    assert env.state.upstream.host == "" and env.state.upstream.mac == MAC
    assert "has not found the CEMM" in (env.monitor.describe() or "")
    env.lan.devices["192.168.2.34"] = (MAC, 0.0)
    env.check()
    assert env.state.upstream.host == "192.168.2.34"
    assert env.monitor.describe() is None
    assert env.events() == []  # found where configured: not a change
    assert env.monitor.status()["confirmed"] is True


def test_found_through_the_neighbour_table(conn: sqlite3.Connection) -> None:
    env = Env(conn, mac=MAC)
    env.lan.devices["192.168.2.77"] = (MAC, 0.0)
    env.lan.devices["192.168.2.78"] = (OTHER, 0.0)
    env.lan.neighbours = {"192.168.2.77": MAC, "192.168.2.78": OTHER}
    env.check()
    assert env.state.upstream.host == "192.168.2.77"
    assert "192.168.2.78" not in env.lan.asked


def test_moved_cemm_is_followed_audited_and_the_old_address_skipped(
    conn: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    env = Env(conn, mac=MAC, probe_subnet="192.168.2.0/24")
    env.lan.devices["192.168.2.34"] = (MAC, 0.0)
    env.lan.neighbours["192.168.2.34"] = MAC
    env.check()
    assert env.state.upstream.host == "192.168.2.34"
    # DHCP hands the CEMM a new address; the neighbour table still has the old entry.
    del env.lan.devices["192.168.2.34"]
    env.lan.devices["192.168.2.51"] = (MAC, 0.0)
    env.lan.asked.clear()
    with caplog.at_level(logging.WARNING, "cemm_gateway.upstream"):
        env.check()
    assert env.state.upstream.host == "192.168.2.51"
    # The old address was asked once (the check), not again during the search.
    assert env.lan.asked.count("192.168.2.34") == 1
    assert env.events() == [
        ("upstream.address_change", {"old": "192.168.2.34", "new": "192.168.2.51", "mac": MAC})
    ]
    assert "moved from 192.168.2.34 to 192.168.2.51" in caplog.text
    assert env.monitor.health.address_changes == 1


def test_a_foreign_device_never_gets_the_traffic(conn: sqlite3.Connection) -> None:
    env = Env(conn, mac=MAC, probe_subnet="192.168.2.0/24")
    env.lan.devices["192.168.2.34"] = (MAC, 0.0)
    env.lan.neighbours["192.168.2.34"] = MAC
    env.check()
    # The CEMM is gone, and another device took its address.
    env.lan.devices["192.168.2.34"] = (OTHER, 0.0)
    env.lan.neighbours["192.168.2.34"] = OTHER
    env.check()
    assert env.state.upstream.host == ""
    text = env.monitor.describe() or ""
    assert "A different device (MAC 02:00:00:00:00:01) answers at 192.168.2.34" in text
    env.check()
    env.check()
    assert env.state.upstream.host == ""
    foreign = [e for e in env.events() if e[0] == "upstream.foreign_device"]
    assert foreign == [
        (
            "upstream.foreign_device",
            {"address": "192.168.2.34", "reported_mac": OTHER, "mac": MAC},
        )
    ]
    # The CEMM shows up elsewhere: found again, with the change audited.
    env.lan.devices["192.168.2.99"] = (MAC, 0.0)
    env.mono += 120  # past the probe back-off
    env.check()
    assert env.state.upstream.host == "192.168.2.99"
    assert env.events()[-1][0] == "upstream.address_change"


def test_probe_backs_off_while_the_cemm_is_missing(conn: sqlite3.Connection) -> None:
    env = Env(conn, mac=MAC, probe_subnet="192.168.2.0/29")
    env.check()
    env.check()  # too soon: no second probe
    assert env.lan.probes == 1
    env.mono += 10
    env.check()
    assert env.lan.probes == 2
    env.mono += 10  # back-off doubled to 20 s
    env.check()
    assert env.lan.probes == 2
    env.mono += 10
    env.check()
    assert env.lan.probes == 3


def test_link_layer_refusal_makes_the_monitor_look_again(conn: sqlite3.Connection) -> None:
    env = Env(conn, mac=MAC, host="192.168.2.34")
    env.lan.devices["192.168.2.34"] = (MAC, 0.0)
    env.check()
    assert not env.monitor._reason_to_look()
    env.state.set_upstream_host("")  # what addons/upstream_identity.py does
    assert env.monitor._reason_to_look()
    env.lan.devices["192.168.2.34"] = (OTHER, 0.0)
    env.check()
    assert env.state.upstream.host == ""
    assert env.monitor.health.foreign_device == ("192.168.2.34", OTHER)


def test_a_proxy_failure_triggers_a_check_once(conn: sqlite3.Connection) -> None:
    env = Env(conn, host="192.168.2.34")
    env.lan.devices["192.168.2.34"] = (MAC, 0.0)
    env.check()
    assert not env.monitor._reason_to_look()
    env.state.port_failed(80, env.clock.now())
    assert env.monitor._reason_to_look()
    assert not env.monitor._reason_to_look()

    started = env.mono
    asyncio.run(env.monitor.wait_for_next_check())
    assert env.mono - started == pytest.approx(10.5)  # nothing new: interval plus jitter


def test_address_only_never_repoints(conn: sqlite3.Connection) -> None:
    env = Env(conn, host="192.168.2.34")
    env.lan.devices["192.168.2.34"] = (OTHER, 0.0)
    env.check()
    assert env.state.upstream.host == "192.168.2.34"
    del env.lan.devices["192.168.2.34"]
    env.check()
    assert env.state.upstream.host == "192.168.2.34"
    since = env.monitor.health.http.failing_since
    assert since is not None
    assert (env.monitor.describe() or "").startswith(
        "The CEMM at 192.168.2.34 has not answered on port 80 since"
    )


@pytest.mark.parametrize(("skew", "warned"), [(120.0, True), (2.0, False), (-120.0, True)])
def test_clock_drift_is_warned_once_per_episode(
    conn: sqlite3.Connection, caplog: pytest.LogCaptureFixture, skew: float, warned: bool
) -> None:
    env = Env(conn, host="192.168.2.34")
    env.lan.devices["192.168.2.34"] = (MAC, skew)
    with caplog.at_level(logging.INFO, "cemm_gateway.upstream"):
        for _ in range(3):
            env.check()
            env.clock.advance(10)
    drift = env.monitor.health.clock_drift
    assert drift is not None and abs(drift - skew) <= 0.5
    drifts = [e for e in env.events() if e[0] == "upstream.clock_drift"]
    assert len(drifts) == (1 if warned else 0)
    assert caplog.text.count("clock is") == (1 if warned else 0)
    assert env.monitor.health.clock_drift_warning is warned
    assert any("clock" in w for w in env.monitor.health.warnings()) is warned
    assert ("clock drift" in env.monitor.facts()) is True
    if warned:
        env.lan.devices["192.168.2.34"] = (MAC, 0.0)
        env.check()
        assert env.events()[-1][0] == "upstream.clock_drift_ok"
        assert not env.monitor.health.clock_drift_warning


def test_foreign_device_drift_is_not_the_cemms(conn: sqlite3.Connection) -> None:
    env = Env(conn, mac=MAC, host="192.168.2.34")
    env.lan.devices["192.168.2.34"] = (OTHER, 500.0)
    env.check()
    assert env.monitor.health.clock_drift is None
    assert env.state.upstream.host == ""


def test_audit_failure_is_logged_not_raised(
    conn: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    env = Env(conn, host="192.168.2.34")
    env.lan.devices["192.168.2.34"] = (MAC, 300.0)
    conn.close()
    with caplog.at_level(logging.WARNING, "cemm_gateway.upstream"):
        env.check()
    assert "could not write upstream.clock_drift to the audit log" in caplog.text


def test_out_of_descriptors_is_one_line_until_a_check_gets_through(
    conn: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    """At the open-file limit a check cannot open its socket (or even import a module):
    one warning, no traceback, however many checks fail; a bug is still a traceback."""
    env = Env(conn, host="192.168.2.34")
    env.lan.devices["192.168.2.34"] = (MAC, 0.0)
    answer = env.lan.check_api
    failure: list[BaseException] = []

    async def check_api(address: str) -> ApiCheck:
        if failure:
            raise failure[0]
        return await answer(address)

    env.lan.check_api = check_api  # type: ignore[method-assign]

    def rounds(count: int) -> list[logging.LogRecord]:
        caplog.clear()
        with caplog.at_level(logging.WARNING, "cemm_gateway.upstream"):
            for _ in range(count):
                asyncio.run(env.monitor.check_logged())
        return [r for r in caplog.records if r.name == "cemm_gateway.upstream"]

    failure.append(OSError(errno.EMFILE, "Too many open files"))
    (line,) = rounds(5)
    assert line.exc_info is None and "no resources left (Too many open files)" in line.message
    failure.clear()
    assert rounds(1) == []  # through again: health as usual
    failure.append(OSError(errno.ENFILE, "Too many open files in system"))
    assert len(rounds(3)) == 1  # a new episode: one line again
    failure[0] = ValueError("a bug")
    records = rounds(2)
    assert len(records) == 2 and all(r.exc_info for r in records)
