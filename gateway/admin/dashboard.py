"""What the dashboard shows, gathered in one place: :func:`collect`.

The page (``/``) and the API (``GET /api/status``) both render the :class:`Dashboard` it
returns. A feature adds its part here, as a field of :class:`Dashboard` filled by
:func:`collect` from the gateway's typed status (:class:`gateway.status.GatewayStatus`):

- ``cemm_ports`` and ``cemm_facts``: per CEMM port what the proxy saw (last success,
  failing since), plus text facts from the CEMM monitor (address, MAC, clock drift, ...);
  while no port answers, ``cemm.down`` is the one sentence that says so (:func:`cemm_down`)
  and replaces the per-port lines;
- ``vpn``: the WireGuard interface with its peers (name, address, enabled, latest
  handshake, bytes), or None without a VPN;
- ``websocket_sessions``: ids of sessions with an open WebSocket, shown as "live" next to
  the session;
- ``certificate``: with ACME, the certificate's issuer, names, expiry and renewal date, and
  the last order with its error in plain words;
- ``storage.message``: "the disk holding <data_dir> is full" while it is, shown at the top
  of the page;
- ``notify_problem``: the last notification that could not be delivered, with a link to
  the notifications page.
- ``backup``: the newest automatic backup, why they are off, the last failure.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from gateway.admin.models import BanOut, SessionOut
from gateway.admin.views import ban_out, session_out
from gateway.services import audit, bans, passkeys, sessions
from gateway.status import GatewayStatus
from gateway.web.context import WebContext
from gateway.web.i18n import gettext as _
from gateway.web.sentences import duration
from gateway.web.times import when
from gateway.wireguard.manager import WireguardReport

RECENT_SECONDS = 86400.0
RECENT_LIMIT = 10
RECENT_SCAN = 500  # failed logins read to group them


class CemmPort(BaseModel):
    port: int
    name: str | None = Field(description="web or WebSocket: which of the CEMM's ports")
    state: Literal["ok", "failing", "unknown"]
    last_ok: float | None
    failing_since: float | None


class CemmStatus(BaseModel):
    ports: list[CemmPort]
    facts: dict[str, str] = Field(
        default_factory=dict, description="anything else known about the CEMM, as text"
    )
    down: str | None = Field(
        default=None,
        description="while no port of the CEMM answers: the one sentence that says so",
    )


class DenialCount(BaseModel):
    reason: str
    count: int


class LoginFailures(BaseModel):
    """Failed logins of one name from one address."""

    user: str
    client_address: str | None
    count: int
    last_at: float


class VpnPeer(BaseModel):
    name: str
    address: str | None = None
    enabled: bool | None = None
    latest_handshake: float | None = None
    rx_bytes: int | None = None
    tx_bytes: int | None = None

    @property
    def transfer_shown(self) -> bool:
        """Bytes known, and the peer connected (a peer that never did has nothing to say)."""
        if self.rx_bytes is None or self.tx_bytes is None:
            return False
        return bool(self.latest_handshake or self.rx_bytes or self.tx_bytes)


class VpnStatus(BaseModel):
    interface: str | None = None
    endpoint: str | None = None
    peers: list[VpnPeer]


class BackupReport(BaseModel):
    last_at: float | None = Field(description="when the newest automatic backup was taken")
    off_reason: str | None = Field(description="why automatic backups are off, or null")
    failure: str | None = Field(description="why the last automatic backup failed, or null")
    failed_at: float | None = None


class CertificateInfo(BaseModel):
    issued: bool = Field(description="from the authority; false for the self-signed stand-in")
    issuer: str
    names: list[str]
    not_after: float | None
    renew_at: float | None
    last_attempt_at: float | None
    last_attempt_ok: bool | None
    last_error: str | None


class Dashboard(BaseModel):
    generated_at: float
    open_connections: int | None = Field(description="null: not known")
    open_websockets: int | None = Field(description="null: not known")
    sessions: list[SessionOut]
    denials: list[DenialCount] = Field(description="refusals since the gateway started")
    recent_login_failures: list[LoginFailures] = Field(
        description="the last 24 hours, by name and address, most recent first"
    )
    bans: list[BanOut]
    cemm: CemmStatus | None = Field(description="null: nothing known about the CEMM yet")
    vpn: VpnStatus | None = Field(description="null: no VPN on this gateway")
    certificate: CertificateInfo | None = Field(
        default=None, description="the ACME certificate; null without ACME"
    )
    storage_problem: str | None = Field(
        default=None,
        description="what is wrong with the data directory's disk (it is full), or null",
    )
    notify_problem: str | None = Field(
        default=None, description="the last notification not delivered (when), or null"
    )
    backup: BackupReport | None = Field(default=None, description="the automatic backups")
    admins_without_second_factor: list[str] = Field(
        default_factory=list,
        description="admins who log in with a password alone (no authenticator, no passkey)",
    )


def _notify_problem(status: GatewayStatus) -> str | None:
    found = status.notify
    if found is None or found.last_failure is None or found.last_failure_at is None:
        return None
    return f"{found.last_failure} ({when(found.last_failure_at, seconds=True)})"


# The monitor's per-port lines, which the one "down" sentence replaces.
_PORT_FACTS = ("web port check", "WebSocket port check")


def cemm_down(status: GatewayStatus, now: float) -> str | None:
    """One sentence while the CEMM answers on none of its ports (what the proxy saw, and
    the monitor's checks agree), else None: since when, and what still works."""
    health = status.upstream
    if health is not None and health.follows_mac and not health.address:
        # Following the CEMM by MAC, with no address for it: the monitor's own sentence
        # (not found yet, lost, or another device in its place) is the precise one.
        return health.unavailable_text()
    seen = list(status.cemm_ports.values())
    checked = [] if health is None else [p for p in (health.http, health.ws) if p.up is not None]
    if not seen and not checked:
        return None
    if any(not port.failing_since for port in seen) or any(port.up for port in checked):
        return None
    since = min(
        [port.failing_since for port in seen if port.failing_since]
        + [port.failing_since for port in checked if port.failing_since]
        or [now]
    )
    return _(
        "The CEMM is not answering, since %(since)s (%(duration)s). Check that it is "
        "switched on and connected to the network. The gateway keeps trying; the CEMM's "
        "pages work again as soon as it answers."
    ) % {"since": when(since), "duration": duration(now - since)}


def _other_warnings(status: GatewayStatus) -> str:
    """The monitor's warnings but those that say a port is not answering (the "down"
    sentence says that once)."""
    health = status.upstream
    if health is None:
        return ""
    said = {health.unavailable_text()} | {
        health.failing_text(port.port, port.failing_since)
        for port in (health.http, health.ws)
        if port.failing_since is not None
    }
    return " ".join(warning for warning in health.warnings() if warning not in said)


def _cemm(status: GatewayStatus, port_names: dict[int, str], now: float) -> CemmStatus | None:
    if not status.cemm_ports and not status.cemm_facts:
        return None
    ports = []
    for port, seen in status.cemm_ports.items():
        state: Literal["ok", "failing", "unknown"] = (
            "failing" if seen.failing_since else "ok" if seen.last_ok else "unknown"
        )
        ports.append(
            CemmPort(
                port=port,
                name=port_names.get(port),
                state=state,
                last_ok=seen.last_ok,
                failing_since=seen.failing_since,
            )
        )
    down = cemm_down(status, now)
    facts = dict(status.cemm_facts)
    if down is not None:
        facts = {key: value for key, value in facts.items() if key not in _PORT_FACTS}
        if facts.get("address", "").startswith("not known: "):
            del facts["address"]  # the "down" sentence says why
        facts.pop("warning", None)
        other = _other_warnings(status)
        if other:
            facts["warning"] = other
    return CemmStatus(ports=sorted(ports, key=lambda p: p.port), facts=facts, down=down)


def _vpn(report: WireguardReport | None) -> VpnStatus | None:
    if report is None:
        return None
    peers = [
        VpnPeer(
            name=peer.name,
            address=peer.address or None,
            enabled=peer.enabled,
            latest_handshake=peer.latest_handshake,
            rx_bytes=peer.rx_bytes,
            tx_bytes=peer.tx_bytes,
        )
        for peer in report.peers
        if peer.name
    ]
    return VpnStatus(
        peers=peers, interface=report.interface or None, endpoint=report.endpoint or None
    )


def _certificate(status: GatewayStatus) -> CertificateInfo | None:
    found = status.certificate
    if found is None:
        return None
    attempt = found.last_attempt
    return CertificateInfo(
        issued=found.issued,
        issuer=found.issuer,
        names=list(found.names),
        not_after=found.not_after.timestamp() if found.not_after else None,
        renew_at=found.renew_at.timestamp() if found.renew_at else None,
        last_attempt_at=attempt.at if attempt else None,
        last_attempt_ok=attempt.ok if attempt else None,
        last_error=attempt.error if attempt and not attempt.ok else None,
    )


def _failures(entries: list[audit.AuditEntry]) -> list[LoginFailures]:
    grouped: dict[tuple[str, str | None], LoginFailures] = {}
    for entry in entries:  # newest first
        key = (entry.actor, entry.client_address)
        if key in grouped:
            grouped[key].count += 1
        else:
            grouped[key] = LoginFailures(
                user=entry.actor, client_address=entry.client_address, count=1, last_at=entry.at
            )
    return list(grouped.values())


def _stored(conn: sqlite3.Connection, *, now: float, idle_timeout: float) -> tuple[Any, ...]:
    return (
        sessions.list_sessions(conn, now=now, idle_timeout=idle_timeout),
        bans.list_bans(conn, now=now),
        audit.search(conn, event="login.failure", since=now - RECENT_SECONDS, limit=RECENT_SCAN),
        passkeys.admins_without_second_factor(conn),
    )


async def collect(context: WebContext, *, current_session: str | None = None) -> Dashboard:
    """Everything the dashboard shows, now."""
    now = time.time()
    status = context.status()
    found, active_bans, failures, unprotected = await context.db.run(
        _stored, now=now, idle_timeout=context.settings.auth.session_idle_timeout
    )
    live_ids = set(status.websocket_sessions)
    upstream = context.state.upstream
    port_names = {upstream.http_port: "web", upstream.ws_port: "WebSocket"}
    return Dashboard(
        generated_at=now,
        open_connections=status.open_connections,
        open_websockets=status.open_websockets,
        sessions=[
            session_out(context, s, current=current_session, live_ids=live_ids) for s in found
        ],
        denials=[
            DenialCount(reason=reason, count=count)
            for reason, count in sorted(status.denials.items(), key=lambda item: -item[1])
        ],
        recent_login_failures=_failures(failures)[:RECENT_LIMIT],
        bans=[ban_out(ban) for ban in active_bans],
        cemm=_cemm(status, port_names, now),
        vpn=_vpn(status.vpn),
        certificate=_certificate(status),
        storage_problem=status.storage.message,
        notify_problem=_notify_problem(status),
        backup=BackupReport(
            last_at=status.backup.last_at,
            off_reason=status.backup.off_reason,
            failure=status.backup.failure,
            failed_at=status.backup.failed_at,
        )
        if status.backup is not None
        else None,
        admins_without_second_factor=unprotected,
    )
