"""What the running gateway reports about itself, as typed data: :class:`GatewayStatus`.

``Gateway.status()`` builds one from its parts (:func:`gather`); the dashboard
(:mod:`gateway.admin.dashboard`), ``/healthz`` and ``/metrics`` read its fields.
:meth:`GatewayStatus.to_dict` is the JSON ``/healthz`` answers to an admin or the scrape
token, key for key what it always was:

- ``open_connections``, ``open_websockets``: counts of the live connections;
- ``websocket_sessions``: ids of the sessions with an open WebSocket, sorted;
- ``cemm``: per CEMM port (``"80": {"last_ok", "failing_since"}``) what the proxy saw,
  plus text facts from the CEMM monitor (address, MAC, clock drift, ...);
- ``upstream``: the CEMM monitor's report (:meth:`UpstreamHealth.as_dict`), ``{}``
  without a monitor;
- ``denials``: refusals since start, by reason;
- ``vpn``: the WireGuard interface and its peers, or null without a VPN;
- ``storage``: the data disk (full, read-only, free bytes, failing background writes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gateway.acme.status import CertificateStatus
from gateway.notify.delivery import NotifyStatus
from gateway.proxy.state import PortStatus, ProxyState
from gateway.store import db
from gateway.upstream.health import UpstreamHealth
from gateway.wireguard.manager import WireguardReport

PortState = Literal["up", "down", "unknown"]


@dataclass(frozen=True)
class StorageStatus:
    """The data directory's disk, and the background writes that fail."""

    disk_full: bool
    read_only: bool
    free_bytes: int | None
    message: str | None
    """"the disk holding <data_dir> is full" while it is, else None."""
    failing_writes: Mapping[str, str]

    @classmethod
    def read(
        cls, data_dir: Path, *, disk_full: bool, read_only: bool, failing: Mapping[str, str]
    ) -> StorageStatus:
        return cls(
            disk_full=disk_full,
            read_only=read_only,
            free_bytes=db.free_bytes(data_dir),
            message=db.disk_full_message(data_dir) if disk_full else None,
            failing_writes=dict(failing),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "disk_full": self.disk_full,
            "read_only": self.read_only,
            "free_bytes": self.free_bytes,
            "message": self.message,
            "failing_writes": dict(self.failing_writes),
        }


@dataclass(frozen=True)
class BackupStatus:
    """The automatic backups (:mod:`gateway.tasks.backup`): the newest, why they are off,
    and the last failure since the last success. Not part of ``/healthz``."""

    directory: str
    last_at: float | None
    last_file: str | None
    off_reason: str | None
    failure: str | None
    failed_at: float | None


@dataclass(frozen=True)
class GatewayStatus:
    open_connections: int
    open_websockets: int
    websocket_sessions: tuple[str, ...]
    cemm_ports: Mapping[int, PortStatus]
    """What the proxy saw of each CEMM port, by port number."""
    cemm_facts: Mapping[str, str]
    """The CEMM monitor's lines about the CEMM, as text (empty without a monitor)."""
    upstream: UpstreamHealth | None
    """A copy of the CEMM monitor's report; None without a monitor."""
    denials: Mapping[str, int]
    vpn: WireguardReport | None
    storage: StorageStatus
    notify: NotifyStatus | None = None
    """Delivery of notifications; None when no receiver is configured."""
    backup: BackupStatus | None = None
    certificate: CertificateStatus | None = None
    """The ACME certificate and its last order; None without ACME (not in ``to_dict``)."""

    def port_state(self, which: Literal["http", "ws"]) -> PortState:
        """Whether the monitor's last check of the CEMM's web or WebSocket port answered."""
        if self.upstream is None:
            return "unknown"
        up = (self.upstream.http if which == "http" else self.upstream.ws).up
        return "unknown" if up is None else "up" if up else "down"

    def to_dict(self) -> dict[str, Any]:
        cemm: dict[str, Any] = {
            str(port): {"last_ok": seen.last_ok, "failing_since": seen.failing_since}
            for port, seen in self.cemm_ports.items()
        }
        return {
            "open_connections": self.open_connections,
            "open_websockets": self.open_websockets,
            "websocket_sessions": list(self.websocket_sessions),
            "cemm": cemm | dict(self.cemm_facts),
            "upstream": self.upstream.as_dict() if self.upstream is not None else {},
            "denials": dict(self.denials),
            "vpn": self.vpn.to_dict() if self.vpn is not None else None,
            "storage": self.storage.to_dict(),
        }


def _copy(health: UpstreamHealth) -> UpstreamHealth:
    return dataclasses.replace(
        health,
        http=dataclasses.replace(health.http),
        ws=dataclasses.replace(health.ws),
        identity=dict(health.identity),
    )


def gather(
    state: ProxyState,
    *,
    open_connections: int,
    open_websockets: int,
    websocket_sessions: set[str],
    cemm_facts: Mapping[str, str],
    vpn: WireguardReport | None,
    storage: StorageStatus,
    notify: NotifyStatus | None = None,
    backup: BackupStatus | None = None,
    certificate: CertificateStatus | None = None,
) -> GatewayStatus:
    """The status now, from the proxy state and what the parts report."""
    health = state.cemm
    return GatewayStatus(
        open_connections=open_connections,
        open_websockets=open_websockets,
        websocket_sessions=tuple(sorted(websocket_sessions)),
        cemm_ports=dict(state.status.ports),
        cemm_facts=dict(cemm_facts),
        upstream=_copy(health) if health is not None else None,
        denials=dict(state.denials),
        vpn=vpn,
        storage=storage,
        notify=notify,
        backup=backup,
        certificate=certificate,
    )
