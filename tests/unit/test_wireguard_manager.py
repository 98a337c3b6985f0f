"""The WireGuard manager's watch, against a model of the machine instead of ``ip``/``wg``/``nft``.

:class:`FakeHost` answers the commands :mod:`gateway.wireguard.interface` runs from a small
model of one machine (the link, its addresses, the WireGuard key and port, the nftables
tables), so a test can break the machine the way an operator or a firewall reload would and
call :meth:`WireguardManager.check` once, as the watch does every two seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.services import peers
from gateway.settings import Settings, WireguardSettings
from gateway.store import db
from gateway.system.commands import CommandError, CommandResult
from gateway.wireguard.interface import FIREWALL_TABLE, WireguardError, WireguardInterface
from gateway.wireguard.keys import KeyVault, generate_private_key, public_key
from gateway.wireguard.manager import WireguardManager


@dataclass
class FakeHost:
    """One machine's WireGuard interface and firewall, as the commands see them."""

    link: bool = False
    up: bool = False
    addresses: set[str] = field(default_factory=set)
    public_key: str = "(none)"
    listen_port: int = 0
    tables: dict[str, str] = field(default_factory=dict)
    nft_works: bool = True
    calls: list[tuple[str, ...]] = field(default_factory=list)

    async def __call__(
        self,
        args: Sequence[str],
        *,
        timeout: float = 10.0,
        check: bool = True,
        input: bytes | None = None,
    ) -> CommandResult:
        argv = tuple(args)
        self.calls.append(argv)
        stdout, ok = self._answer(argv, (input or b"").decode())
        if check and not ok:
            raise CommandError(argv, "exit status 1", returncode=1)
        return CommandResult(argv, 0 if ok else 1, stdout, "")

    def _answer(self, argv: tuple[str, ...], text: str) -> tuple[str, bool]:
        match argv:
            case ("ip", "link", "add", "dev", _, "type", "wireguard"):
                self.link, self.up, self.addresses = True, False, set()
                self.public_key, self.listen_port = "(none)", 0
            case ("ip", "link", "del", "dev", _):
                ok, self.link = self.link, False
                return "", ok
            case ("ip", "link", "set", "dev", _, state):
                self.up = state == "up"
            case ("ip", "-j", "address", "show", "dev", name):
                flags = ["POINTOPOINT", "NOARP", *(["UP"] if self.up else [])]
                addr_info = [{"local": address} for address in sorted(self.addresses)]
                link = {"ifname": name, "flags": flags, "addr_info": addr_info}
                return json.dumps([link]), self.link
            case ("ip", *_, "address", "replace", address, "dev", _):
                self.addresses.add(address.split("/")[0])
            case ("wg", "set", _, "private-key", "/dev/stdin", "listen-port", port):
                self.public_key, self.listen_port = public_key(text.strip()), int(port)
            case ("wg", "show", _, "dump"):
                return f"(hidden)\t{self.public_key}\t{self.listen_port}\toff\n", self.link
            case ("nft", "-f", "-"):
                if self.nft_works:
                    # As nftables would list it: the table without the lines that replace it.
                    self.tables[FIREWALL_TABLE] = text.split("\n", 2)[2]
                return "", self.nft_works
            case ("nft", "list", "table", "inet", table):
                return self.tables.get(table, ""), table in self.tables
            case ("nft", "delete", "table", "inet", table):
                return "", self.tables.pop(table, None) is not None
        return "", self.link

    @property
    def configured(self) -> bool:
        return self.up and "10.13.13.1" in self.addresses and self.listen_port == 51820

    def changes(self) -> list[tuple[str, ...]]:
        """The commands that changed something (not those that only looked)."""
        looks = ("ip -j", "ip link show", "wg show", "nft list")
        return [argv for argv in self.calls if not " ".join(argv).startswith(looks)]


@dataclass
class Gateway:
    host: FakeHost
    clock: ManualClock
    conn: sqlite3.Connection
    manager: WireguardManager


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    settings = Settings(
        data_dir=tmp_path,
        wireguard=WireguardSettings(enabled=True, endpoint="vpn.example.net:51820"),
    )
    host, clock = FakeHost(), ManualClock()
    conn = db.connect(tmp_path / "gateway.db")
    manager = WireguardManager(
        settings, conn, gateway_ports=[80, 8090, 8443], clock=clock, runner=host
    )
    return Gateway(host, clock, conn, manager)


def _add(gateway: Gateway, name: str) -> None:
    peers.add_peer(
        gateway.conn,
        name,
        settings=gateway.manager.settings,
        vault=gateway.manager.vault,
        actor="test",
        clock=gateway.clock,
    )


def _sealed(conn: sqlite3.Connection) -> dict[str, bool]:
    rows = conn.execute("SELECT name, private_key_sealed FROM wireguard_peer ORDER BY name")
    return {name: sealed is not None for name, sealed in rows}


async def _started(gateway: Gateway) -> None:
    await gateway.manager.start()  # the checks are the test's to run (no check task)


def test_generated_key_is_deleted_after_a_day_without_any_handshake(gateway: Gateway) -> None:
    async def scenario() -> None:
        _add(gateway, "old")
        gateway.clock.advance(peers.PRIVATE_KEY_TTL / 2)
        _add(gateway, "new")
        await _started(gateway)
        await gateway.manager.check()
        assert _sealed(gateway.conn) == {"new": True, "old": True}
        gateway.clock.advance(peers.PRIVATE_KEY_TTL / 2)
        # No peer ever made a handshake: the watch deletes the day-old key all the same.
        await gateway.manager.check()
        assert _sealed(gateway.conn) == {"new": True, "old": False}
        gateway.clock.advance(peers.PRIVATE_KEY_TTL / 2)
        await gateway.manager.check()
        assert _sealed(gateway.conn) == {"new": False, "old": False}
        await gateway.manager.stop()

    asyncio.run(scenario())


def test_keys_that_expired_while_the_gateway_was_off_are_deleted_at_start(
    gateway: Gateway,
) -> None:
    async def scenario() -> None:
        _add(gateway, "phone")
        gateway.clock.advance(peers.PRIVATE_KEY_TTL + 1)
        await _started(gateway)
        assert _sealed(gateway.conn) == {"phone": False}
        await gateway.manager.stop()

    asyncio.run(scenario())


def test_purge_names_only_the_peers_whose_key_it_deleted(tmp_path: Path) -> None:
    gateway_settings = WireguardSettings(enabled=True, endpoint="vpn.example.net:51820")
    conn = db.connect(tmp_path / "gateway.db")
    clock = ManualClock()
    vault = KeyVault(tmp_path / "wireguard")
    for name in ("a", "b"):
        peers.add_peer(conn, name, settings=gateway_settings, vault=vault, actor="t", clock=clock)
    peers.record_handshakes(conn, {peers.get_peer(conn, "a").public_key: clock.now()})
    clock.advance(peers.PRIVATE_KEY_TTL)
    assert peers.purge_expired_keys(conn, clock=clock) == ["b"]
    assert peers.purge_expired_keys(conn, clock=clock) == []


async def _healthy(gateway: Gateway) -> str:
    """Start; the interface is up with its rule. The rule as applied."""
    await _started(gateway)
    assert gateway.host.configured and FIREWALL_TABLE in gateway.host.tables
    gateway.host.calls.clear()
    return gateway.host.tables[FIREWALL_TABLE]


def test_a_healthy_interface_is_only_looked_at(gateway: Gateway) -> None:
    async def scenario() -> None:
        await _healthy(gateway)
        for _ in range(3):
            await gateway.manager.check()
        assert gateway.host.changes() == []
        await gateway.manager.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize("change", ["flushed", "edited"])
def test_a_lost_firewall_rule_is_applied_again_with_a_warning(
    gateway: Gateway, change: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        rule = await _healthy(gateway)
        if change == "flushed":  # a host firewall reload: nft flush ruleset
            gateway.host.tables.clear()
        else:
            gateway.host.tables[FIREWALL_TABLE] = rule.replace("drop", "accept")
        with caplog.at_level(logging.WARNING, logger="cemm_gateway.wireguard"):
            await gateway.manager.check()
        assert gateway.host.tables[FIREWALL_TABLE] == rule
        assert f"nftables table inet {FIREWALL_TABLE}) was gone or changed" in caplog.text
        assert gateway.host.configured
        caplog.clear()
        await gateway.manager.check()
        assert caplog.text == ""
        await gateway.manager.stop()

    asyncio.run(scenario())


def test_no_tunnel_while_the_rule_cannot_be_applied(gateway: Gateway) -> None:
    async def scenario() -> None:
        await _healthy(gateway)
        gateway.host.tables.clear()
        gateway.host.nft_works = False
        with pytest.raises(WireguardError, match="interface wg0 is down until it works"):
            await gateway.manager.check()
        assert not gateway.host.up
        # The next checks do not bring it up without the rule ...
        with pytest.raises(WireguardError):
            await gateway.manager.check()
        assert not gateway.host.up
        # ... and bring it up once the rule applies.
        gateway.host.nft_works = True
        await gateway.manager.check()
        assert gateway.host.configured and FIREWALL_TABLE in gateway.host.tables
        await gateway.manager.stop()

    asyncio.run(scenario())


def _take_down(host: FakeHost) -> None:
    host.up = False


def _drop_address(host: FakeHost) -> None:
    host.addresses.clear()


def _other_port(host: FakeHost) -> None:
    host.listen_port = 51821


def _other_key(host: FakeHost) -> None:
    host.public_key = public_key(generate_private_key())


@pytest.mark.parametrize("damage", [_take_down, _drop_address, _other_port, _other_key])
def test_an_interface_without_its_configuration_is_configured_again(
    gateway: Gateway, damage: Callable[[FakeHost], None], caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        await _healthy(gateway)
        _add(gateway, "phone")
        await gateway.manager.check()  # applies the new peer
        gateway.host.calls.clear()
        damage(gateway.host)
        with caplog.at_level(logging.WARNING, logger="cemm_gateway.wireguard"):
            await gateway.manager.check()
        assert gateway.host.configured
        assert gateway.host.public_key == gateway.manager.server_public_key
        assert "had lost its configuration" in caplog.text
        changes = gateway.host.changes()
        assert ("ip", "link", "add", "dev", "wg0", "type", "wireguard") not in changes
        assert changes[0] == ("nft", "-f", "-")  # the rule first, before it is up
        assert ("wg", "syncconf", "wg0", "/dev/stdin") in changes  # and the peers again
        assert gateway.manager.restarts == 0
        await gateway.manager.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("listen_host", "subnet6", "uncovered"),
    [
        ("", "fd13::/64", []),
        ("0.0.0.0", "fd13::/64", ["fd13::1"]),
        ("::", "fd13::/64", ["10.13.13.1"]),
        ("192.168.1.5", "fd13::/64", ["10.13.13.1", "fd13::1"]),
        ("2001:db8::5", "fd13::/64", ["10.13.13.1", "fd13::1"]),
        ("192.168.1.5", "", ["10.13.13.1"]),
        ("0.0.0.0", "", []),
    ],
)
def test_tunnel_addresses_that_need_listeners_of_their_own(
    listen_host: str, subnet6: str, uncovered: list[str]
) -> None:
    interface = WireguardInterface(
        WireguardSettings(enabled=True, endpoint="vpn.example.net:51820", subnet6=subnet6),
        private_key=generate_private_key(),
        gateway_ports=[80],
        runner=FakeHost(),
    )
    assert interface.uncovered_addresses(listen_host) == uncovered
