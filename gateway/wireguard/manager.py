"""Keeps the WireGuard interface in step with the database, and watches it.

On start: the server key (made at first start, 0600), the interface, the firewall rule,
and the peers from the database. Then, on every round of the WireGuard check
(:mod:`gateway.tasks.wireguard_check`), :meth:`WireguardManager.check`: delete the
generated private keys older than 24 hours; recreate the interface if it (or ``wireguard-
go``) died, configure it again if it lost its configuration, and then re-apply the peers;
put the firewall rule back if it is gone (a warning each time); re-apply when the database
changed or a peer expired; read handshakes and transfer for the dashboard and metrics; on
a peer's first handshake, delete the private key the gateway generated for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.services import peers as peer_service
from gateway.settings import Settings
from gateway.system import commands
from gateway.wireguard import keys
from gateway.wireguard.config import PeerStats
from gateway.wireguard.firewall import FIREWALL_TABLE
from gateway.wireguard.interface import Repair, WireguardError, WireguardInterface

logger = logging.getLogger("cemm_gateway.wireguard")

LOOK_INTERVAL = 30.0
"""The longest the interface goes unchecked while the kernel reports no change."""


@dataclass(frozen=True)
class PeerStatus:
    name: str
    address: str
    enabled: bool
    trusted: bool
    latest_handshake: float | None
    rx_bytes: int
    tx_bytes: int


@dataclass(frozen=True)
class WireguardReport:
    """What the manager knows at ``at``: the interface, how often it was rebuilt, the peers."""

    interface: str
    kind: str
    endpoint: str
    restarts: int
    peers: tuple[PeerStatus, ...]
    at: float

    def handshake_age(self, peer: PeerStatus) -> float | None:
        return self.at - peer.latest_handshake if peer.latest_handshake else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "interface": self.interface,
            "kind": self.kind,
            "endpoint": self.endpoint,
            "restarts": self.restarts,
            "peers": [
                {**dataclasses.asdict(peer), "handshake_age": self.handshake_age(peer)}
                for peer in self.peers
            ],
        }


def key_directory(data_dir: Path) -> Path:
    return data_dir / "wireguard"


class WireguardManager:
    def __init__(
        self,
        settings: Settings,
        conn: sqlite3.Connection,
        *,
        gateway_ports: list[int],
        clock: Clock = SYSTEM_CLOCK,
        runner: commands.Runner = commands.run,
    ) -> None:
        self.settings = settings.wireguard
        self._conn = conn
        self._clock = clock
        directory = key_directory(settings.data_dir)
        self.vault = keys.KeyVault(directory)
        private_key = keys.server_private_key(directory)
        self.server_public_key = keys.public_key(private_key)
        self.interface = WireguardInterface(
            self.settings, private_key=private_key, gateway_ports=gateway_ports, runner=runner
        )
        self._dirty = True
        self._store_failure: str | None = None
        self._next_expiry: float | None = None
        self.stats: dict[str, PeerStats] = {}
        self.restarts = 0
        # Set when a check is due now: the database changed (:meth:`changed`), or the
        # kernel reported a change of interfaces or nftables (gateway.system.netlink).
        self.wake = asyncio.Event()

    async def start(self) -> None:
        try:
            await self.interface.ensure()
            await self.interface.ensure_firewall()  # an interface left from before
        except WireguardError as error:
            raise WireguardError(
                f"cannot bring up WireGuard interface {self.settings.interface}: {error}. "
                "The gateway needs NET_ADMIN, /dev/net/tun and nftables for it; or set "
                "[wireguard] enabled = false"
            ) from None
        self._purge_keys()
        await self._apply()

    def changed(self) -> None:
        """The database changed: apply the peers on the next check, which is due now."""
        self._dirty = True
        self.wake.set()

    def quiet_for(self, *, heard: bool) -> float:
        """How long the next check may wait for a reason (:attr:`wake`); 0: check now.

        ``heard``: the kernel reports interface, address and nftables changes. Without that,
        and while a generated key waits for its peer's first handshake (it is deleted at
        that handshake), checks come every round as they always did. Otherwise a check is
        due at a peer's expiry and every :data:`LOOK_INTERVAL` seconds, for what nothing
        reports: a peer's configuration changed by hand, handshakes and transfer.
        """
        if not heard or self._dirty or peer_service.keys_awaiting_handshake(self._conn):
            return 0.0
        if self._next_expiry is None:
            return LOOK_INTERVAL
        return min(LOOK_INTERVAL, max(0.0, self._next_expiry - self._clock.now()))

    async def _apply(self) -> None:
        desired = peer_service.desired_peers(self._conn, vault=self.vault, clock=self._clock)
        await self.interface.apply(desired)
        self._next_expiry = peer_service.next_expiry(self._conn, clock=self._clock)
        self._dirty = False

    def _purge_keys(self) -> None:
        expired = peer_service.purge_expired_keys(self._conn, clock=self._clock)
        if expired:
            logger.info(
                "deleted the generated private key of peer %s: no handshake within 24 hours",
                ", ".join(expired),
            )

    async def check(self) -> None:
        """One round of the watch (the module's docstring lists what it does)."""
        # First, so that trouble with the interface never keeps a key longer.
        self._store_write(self._purge_keys)
        repair = await self.interface.ensure()
        if repair is not None:
            if repair is Repair.RECREATED:
                self.restarts += 1
            logger.warning("WireGuard interface %s %s", self.settings.interface, repair.value)
            await self._apply()
            await self.interface.resume(
                {key: peer.endpoint for key, peer in self.stats.items() if peer.endpoint}
            )
        elif await self.interface.ensure_firewall():
            logger.warning(
                "the firewall rule of WireGuard interface %s (nftables table inet %s) was gone "
                "or changed; applied it again",
                self.settings.interface,
                FIREWALL_TABLE,
            )
        expired = self._next_expiry is not None and self._clock.now() >= self._next_expiry
        if self._dirty or expired:
            await self._apply()
        stats = await self.interface.stats()
        self.stats = {peer.public_key: peer for peer in stats}
        handshakes = {p.public_key: p.latest_handshake for p in stats if p.latest_handshake}
        if handshakes:
            self._store_write(lambda: peer_service.record_handshakes(self._conn, handshakes))

    def _store_write(self, write: Any) -> None:
        """A write of the check: another process's lock or a full disk makes it fail (the
        connection waits at most 0.1 s); it is tried again on the next check, and the
        interface is checked regardless. One warning while it fails."""
        try:
            write()
        except sqlite3.Error as error:
            if self._store_failure != str(error):
                logger.warning("WireGuard check: could not write to the database: %s", error)
            self._store_failure = str(error)
        else:
            self._store_failure = None

    def peer_status(self) -> list[PeerStatus]:
        result = []
        for peer in peer_service.list_peers(self._conn, clock=self._clock):
            stats = self.stats.get(peer.public_key)
            result.append(
                PeerStatus(
                    name=peer.name,
                    address=peer.address_v4,
                    enabled=peer.active(self._clock.now()),
                    trusted=peer.trusted,
                    latest_handshake=stats.latest_handshake if stats else None,
                    rx_bytes=stats.rx_bytes if stats else 0,
                    tx_bytes=stats.tx_bytes if stats else 0,
                )
            )
        return result

    def report(self) -> WireguardReport:
        """The interface and its peers now: the dashboard's VPN panel and ``/healthz``."""
        return WireguardReport(
            interface=self.settings.interface,
            kind=self.interface.kind,
            endpoint=self.settings.endpoint,
            restarts=self.restarts,
            peers=tuple(self.peer_status()),
            at=time.time(),
        )

    def status(self) -> dict[str, Any]:
        """:meth:`report` as JSON data."""
        return self.report().to_dict()

    async def stop(self) -> None:
        await self.interface.close()
