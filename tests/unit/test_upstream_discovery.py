"""Finding the CEMM by MAC: neighbour table, probe, identity, with fake commands and checks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from gateway.system import commands
from gateway.upstream.discovery import (
    Discovery,
    link_layer_address,
    parse_arp_table,
    parse_neighbours,
    probe,
    probe_addresses,
)
from gateway.upstream.health import ApiCheck, Identity

MAC = "80:1F:12:47:06:B0"
OTHER = "02:00:00:00:00:01"


def neigh_json(*entries: tuple[str, str | None, str]) -> str:
    rows = []
    for dst, lladdr, state in entries:
        row = {"dst": dst, "dev": "eth0", "state": [state]}
        if lladdr is not None:
            row["lladdr"] = lladdr.lower()
        rows.append(row)
    return json.dumps(rows)


class FakeRunner:
    """Answers ``ip -j neigh show`` from a list of tables, one per call (the last repeats)."""

    def __init__(self, *tables: str, fail: bool = False) -> None:
        self.tables = list(tables)
        self.calls: list[tuple[str, ...]] = []
        self.fail = fail

    async def __call__(self, argv: Sequence[str], **kwargs: object) -> commands.CommandResult:
        self.calls.append(tuple(argv))
        if self.fail:
            raise commands.CommandNotFound(argv, "not installed (not found in PATH)")
        table = self.tables.pop(0) if len(self.tables) > 1 else self.tables[0]
        return commands.CommandResult(tuple(argv), 0, table, "")


class FakeDevices:
    """Who answers ``/api/v1/public/cemm`` where: {address: MAC or None (no answer)}."""

    def __init__(self, devices: dict[str, str | None], delay: float = 0.0) -> None:
        self.devices = devices
        self.asked: list[str] = []
        self.delay = delay

    async def check(self, address: str) -> ApiCheck:
        self.asked.append(address)
        await asyncio.sleep(self.delay)
        mac = self.devices.get(address)
        if mac is None:
            return ApiCheck(address, answered=False, error="no answer (timed out)")
        return ApiCheck(
            address, answered=True, status=200, response_time=0.01, identity=Identity(mac, 1)
        )


def test_parse_neighbours() -> None:
    text = neigh_json(
        ("192.168.2.34", MAC, "REACHABLE"),
        ("192.168.2.35", None, "FAILED"),
        ("fe80::1", OTHER, "STALE"),
    )
    entries = parse_neighbours(text)
    assert [(e.address, e.mac, e.usable) for e in entries] == [
        ("192.168.2.34", MAC, True),
        ("192.168.2.35", None, False),
        ("fe80::1", OTHER, True),
    ]
    assert parse_neighbours("") == [] and parse_neighbours("not json") == []
    assert parse_neighbours('[{"dst": "bogus"}, 5]') == []


ARP = """IP address       HW type     Flags       HW address            Mask     Device
192.168.2.34     0x1         0x2         80:1f:12:47:06:b0     *        eth0
192.168.2.35     0x1         0x0         00:00:00:00:00:00     *        eth0
"""


def test_parse_arp_table_keeps_complete_entries() -> None:
    assert parse_arp_table(ARP) == {"192.168.2.34": MAC}


def test_link_layer_address(tmp_path: Path) -> None:
    arp = tmp_path / "arp"
    arp.write_text(ARP)
    runner = FakeRunner(neigh_json(("fd00::34", OTHER, "REACHABLE")))
    assert asyncio.run(link_layer_address("192.168.2.34", runner=runner, arp_table=arp)) == MAC
    assert asyncio.run(link_layer_address("192.168.2.35", runner=runner, arp_table=arp)) is None
    assert runner.calls == []  # IPv4 needs no program
    assert asyncio.run(link_layer_address("fd00::34", runner=runner, arp_table=arp)) == OTHER
    assert runner.calls == [("ip", "-j", "neigh", "show", "to", "fd00::34")]
    assert asyncio.run(link_layer_address("not an address", runner=runner)) is None
    failing = FakeRunner(fail=True)
    assert asyncio.run(link_layer_address("fd00::34", runner=failing)) is None


def test_probe_addresses() -> None:
    assert probe_addresses("192.168.2.0/30") == ["192.168.2.1", "192.168.2.2"]
    assert len(probe_addresses("192.168.2.0/24")) == 254
    assert probe_addresses("192.168.2.7/32") == ["192.168.2.7"]


def test_probe_is_bounded_and_reports_who_accepted() -> None:
    running = peak = 0
    tried: list[tuple[str, int, float]] = []

    async def connect(address: str, port: int, timeout: float) -> bool:
        nonlocal running, peak
        tried.append((address, port, timeout))
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        return address.endswith(".7")

    accepted = asyncio.run(probe("10.1.2.0/24", 80, connect=connect, timeout=0.5, concurrency=16))
    assert accepted == ["10.1.2.7"]
    assert len(tried) == 254 and peak <= 16
    assert {port for _, port, _ in tried} == {80} and {t for *_, t in tried} == {0.5}


def _discovery(devices: FakeDevices, runner: FakeRunner, subnet: str = "", **kw) -> Discovery:
    async def connect(address: str, port: int, timeout: float) -> bool:
        return address in devices.devices

    return Discovery(
        mac=MAC,
        http_port=80,
        check=devices.check,
        probe_subnet=subnet,
        runner=runner,
        connect=connect,
        **kw,
    )


def test_finds_the_mac_in_the_neighbour_table_and_asks_it() -> None:
    devices = FakeDevices({"192.168.2.40": MAC, "192.168.2.41": OTHER})
    runner = FakeRunner(
        neigh_json(("192.168.2.41", OTHER, "REACHABLE"), ("192.168.2.40", MAC, "STALE"))
    )
    result = asyncio.run(_discovery(devices, runner).find())
    assert result.found is not None and result.found.address == "192.168.2.40"
    # Only the entry with the right MAC is asked; the other device is left alone.
    assert devices.asked == ["192.168.2.40"]
    assert not result.probed


def test_a_stale_entry_whose_device_says_another_mac_is_not_used() -> None:
    # The neighbour table still says MAC at .34, but the device there now is another one.
    devices = FakeDevices({"192.168.2.34": OTHER, "192.168.2.50": MAC})
    runner = FakeRunner(
        neigh_json(("192.168.2.34", MAC, "STALE")),
        neigh_json(("192.168.2.34", OTHER, "REACHABLE"), ("192.168.2.50", MAC, "REACHABLE")),
    )
    result = asyncio.run(_discovery(devices, runner, "192.168.2.0/24").find(["192.168.2.34"]))
    assert result.found is not None and result.found.address == "192.168.2.50"
    assert result.foreign == [("192.168.2.34", OTHER)]
    assert result.probed
    assert devices.asked == ["192.168.2.34", "192.168.2.50"]


def test_hint_first_and_candidates_are_asked_concurrently() -> None:
    devices = FakeDevices({"10.0.0.9": MAC, "10.0.0.5": MAC}, delay=0.2)
    runner = FakeRunner(neigh_json(("10.0.0.9", MAC, "REACHABLE"), ("10.0.0.5", MAC, "STALE")))
    loop = asyncio.new_event_loop()
    started = loop.time()
    result = loop.run_until_complete(_discovery(devices, runner).find(["10.0.0.5"]))
    elapsed = loop.time() - started
    loop.close()
    assert result.found is not None and result.found.address == "10.0.0.5"
    assert elapsed < 0.35  # both asked at once, not one after the other


def test_nothing_found_without_probe() -> None:
    devices = FakeDevices({"10.0.0.9": MAC})
    result = asyncio.run(_discovery(devices, FakeRunner("[]")).find())
    assert result.found is None and not result.probed and devices.asked == []


def test_probe_can_be_held_back() -> None:
    devices = FakeDevices({"10.0.0.9": MAC})
    runner = FakeRunner("[]", neigh_json(("10.0.0.9", MAC, "REACHABLE")))
    result = asyncio.run(_discovery(devices, runner, "10.0.0.0/28").find(allow_probe=False))
    assert result.found is None and not result.probed


def test_without_a_neighbour_table_the_probe_responders_are_asked() -> None:
    devices = FakeDevices({"10.0.0.3": OTHER, "10.0.0.9": MAC})
    runner = FakeRunner(fail=True)
    result = asyncio.run(_discovery(devices, runner, "10.0.0.0/28").find())
    assert result.found is not None and result.found.address == "10.0.0.9"
    assert result.neighbour_error and "not installed" in result.neighbour_error
    assert result.foreign == [("10.0.0.3", OTHER)]


def test_hints_are_skipped_when_asked() -> None:
    devices = FakeDevices({"10.0.0.9": MAC})
    runner = FakeRunner(neigh_json(("10.0.0.4", MAC, "STALE"), ("10.0.0.9", MAC, "REACHABLE")))
    result = asyncio.run(_discovery(devices, runner).find(["10.0.0.4"], skip=["10.0.0.4"]))
    assert result.found is not None and result.found.address == "10.0.0.9"
    assert devices.asked == ["10.0.0.9"]


@pytest.mark.parametrize("state", ["FAILED", "INCOMPLETE"])
def test_dead_neighbour_entries_are_not_candidates(state: str) -> None:
    devices = FakeDevices({"10.0.0.9": MAC})
    runner = FakeRunner(neigh_json(("10.0.0.9", MAC, state)))
    assert asyncio.run(_discovery(devices, runner).find()).found is None


def test_link_local_entries_are_skipped_and_ipv4_comes_first() -> None:
    devices = FakeDevices({"fd00::34": MAC, "192.168.2.34": MAC, "fe80::1": MAC})
    runner = FakeRunner(
        neigh_json(
            ("fe80::1", MAC, "REACHABLE"),
            ("fd00::34", MAC, "REACHABLE"),
            ("192.168.2.34", MAC, "REACHABLE"),
        )
    )
    result = asyncio.run(_discovery(devices, runner).find())
    assert result.found is not None and result.found.address == "192.168.2.34"
    assert devices.asked == ["192.168.2.34", "fd00::34"]
