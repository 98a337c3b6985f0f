"""The WireGuard manager's watch, against a model of the machine instead of ``ip``/``wg``/``nft``.

:class:`FakeHost` answers the commands :mod:`gateway.wireguard.interface` runs from a small
model of one machine (the link, its addresses, the WireGuard key and port, the nftables
tables), so a test can break the machine the way an operator or a firewall reload would and
call :meth:`WireguardManager.check` once, as the watch does every two seconds.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.services import peers
from gateway.settings import Settings, WireguardSettings
from gateway.store import db
from gateway.system.commands import CommandResult
from gateway.wireguard.keys import KeyVault
from gateway.wireguard.manager import WireguardManager


@dataclass
class FakeHost:
    """One machine's WireGuard interface and firewall, as the commands see them."""

    link: bool = False
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
        ok = True
        if argv[:3] == ("ip", "link", "show"):
            ok = self.link
        elif argv[:3] == ("ip", "link", "add"):
            self.link = True
        elif argv[:3] == ("ip", "link", "del"):
            ok, self.link = self.link, False
        return CommandResult(argv, 0 if ok else 1, "", "" if ok else "no such device")


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
    await gateway.manager.start()
    assert gateway.manager._task is not None
    gateway.manager._task.cancel()  # the test calls check() itself


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
