"""Watches whose only job is to notice something worth a notification and say so:

- :class:`VpnWatch` (with WireGuard on): a peer's first handshake ever
  (``peer.first_handshake``: the database's ``first_handshake_at`` is later than the start
  of the watch) and a handshake from an address other than the peer's last one since the
  gateway started (``peer.new_endpoint``; a new port behind the same address is not news).
- :class:`CertificateWatch` (with TLS on): the certificate expires within
  :data:`EXPIRY_WARNING` (``certificate.expiring``), at most once a day.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509

from gateway.notify.message import Notice, when
from gateway.services import peers as peer_service
from gateway.wireguard.manager import WireguardManager

logger = logging.getLogger("cemm_gateway.notify")

EXPIRY_WARNING = 14 * 86400.0
DAY = 86400.0


def _host(endpoint: str) -> str:
    """``[2001:db8::1]:51820`` / ``192.0.2.1:51820`` -> the address alone."""
    host = endpoint.rsplit(":", 1)[0]
    return host.strip("[]")


class VpnWatch:
    def __init__(
        self,
        manager: WireguardManager,
        conn: sqlite3.Connection,
        notify: Callable[[Notice], None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.manager = manager
        self.conn = conn
        self._notify = notify
        self._clock = clock
        self.started = clock()
        self.endpoints: dict[str, str] = {}
        self.told_first: set[str] = set()

    def check(self) -> None:
        now = self._clock()
        names = {}
        for peer in peer_service.list_peers(self.conn):
            names[peer.public_key] = peer.name
            first = peer.first_handshake_at
            if (
                first is not None
                and first >= self.started
                and peer.public_key not in self.told_first
            ):
                self.told_first.add(peer.public_key)
                self._notify(Notice("peer.first_handshake", now, detail={"peer": peer.name}))
        for key, stats in self.manager.stats.items():
            if not stats.endpoint or key not in names:
                continue
            host = _host(stats.endpoint)
            before = self.endpoints.get(key)
            self.endpoints[key] = host
            if before is not None and before != host:
                self._notify(
                    Notice("peer.new_endpoint", now, address=host, detail={"peer": names[key]})
                )

    async def run(self, interval: float = 2.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                self.check()
            except sqlite3.Error as error:
                logger.warning("reading the VPN peers for notifications failed: %s", error)


def expires_at(cert_path: Path) -> float:
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return certificate.not_valid_after_utc.timestamp()


class CertificateWatch:
    def __init__(
        self,
        cert_path: Path,
        notify: Callable[[Notice], None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cert_path = cert_path
        self._notify = notify
        self._clock = clock
        self.told_at: float | None = None

    def check(self) -> None:
        now = self._clock()
        try:
            expiry = expires_at(self.cert_path)
        except (OSError, ValueError) as error:
            logger.warning("cannot read the certificate %s: %s", self.cert_path, error)
            return
        if expiry - now > EXPIRY_WARNING:
            self.told_at = None
            return
        if self.told_at is None or now - self.told_at >= DAY:
            self.told_at = now
            self._notify(Notice("certificate.expiring", now, detail={"expires": when(expiry)}))

    async def run(self, interval: float = 3600.0) -> None:
        while True:
            self.check()
            await asyncio.sleep(interval)
