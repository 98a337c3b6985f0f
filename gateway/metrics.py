"""Prometheus metrics: a collector that reads the gateway's live state at scrape time.

Nothing is counted twice: the proxy already keeps its counters (``ProxyState.requests``,
``ProxyState.denials``), the connection registry knows what is open, the login snapshot
knows the sessions, the upstream monitor keeps its report (``ProxyState.cemm``) and the
audit log records every login, failure and ban. :class:`GatewayCollector` turns a
:class:`MetricsSnapshot` of those into metric families when scraped, so there is no second
set of counters to keep in step. Database numbers are read just before (on the web app's
database worker thread), never on the proxy's path.

Families (all prefixed ``cemm_gateway_``)::

    requests_total{kind}                      counter  admitted requests, by how
    denials_total{reason}                     counter  refused connections / requests
    logins_total{method}                      counter  successful logins (audit log)
    login_failures_total                      counter  failed logins (audit log)
    bans_total                                counter  bans imposed (audit log)
    bans_active                               gauge
    sessions_active                           gauge    usable login sessions
    connections_open                          gauge    client connections
    websockets_open                           gauge
    upstream_up{port,service}                 gauge    1 answering, 0 not (last check)
    upstream_response_seconds{port,service}   gauge    last check's response time
    upstream_identity_confirmed               gauge    1 forwarding to the CEMM of [upstream] mac
    upstream_address_changes_total            counter
    upstream_clock_drift_seconds              gauge    CEMM clock minus gateway clock
    upstream_clock_drift_warning              gauge    1 during a drift episode
    upstream_last_check_timestamp_seconds     gauge
    wireguard_peers                           gauge    configured peers (WireGuard on only)
    wireguard_peer_handshake_age_seconds{peer} gauge   NaN: no handshake yet
    wireguard_peer_received_bytes_total{peer} counter
    wireguard_peer_sent_bytes_total{peer}     counter

Counters from the audit log start from what the log still holds (``audit_retention_days``),
which Prometheus treats like a restart when old entries are purged. Gauges that have no
value yet (no check so far) are exported as NaN rather than left out, so an alert on them
never silently matches nothing. The WireGuard families appear only with ``[wireguard]
enabled``; their numbers come from the WireGuard manager's latest ``wg show`` reading.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.upstream.health import UpstreamHealth

PREFIX = "cemm_gateway_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class AuditNumbers:
    """What the database contributes: counts from the audit log, and live bans."""

    logins: Mapping[str, int] = field(default_factory=dict)
    login_failures: int = 0
    bans: int = 0
    bans_active: int = 0


def read_audit_numbers(conn: sqlite3.Connection, *, now: float) -> AuditNumbers:
    """Read :class:`AuditNumbers` (uses the ``audit_log (event, at)`` index)."""
    logins: dict[str, int] = {}
    for method, count in conn.execute(
        "SELECT coalesce(json_extract(detail, '$.method'), 'password'), count(*)"
        " FROM audit_log WHERE event = 'login' GROUP BY 1"
    ):
        logins[str(method)] = int(count)

    def events(event: str) -> int:
        row = conn.execute("SELECT count(*) FROM audit_log WHERE event = ?", (event,)).fetchone()
        return int(row[0])

    active = conn.execute(
        "SELECT count(*) FROM ban WHERE until > ? AND lifted_at IS NULL", (now,)
    ).fetchone()
    return AuditNumbers(
        logins=logins,
        login_failures=events("login.failure"),
        bans=events("ban"),
        bans_active=int(active[0]),
    )


@dataclass(frozen=True)
class WireguardPeer:
    name: str
    latest_handshake: float | None
    rx_bytes: int
    tx_bytes: int


@dataclass(frozen=True)
class MetricsSnapshot:
    """Everything one scrape reports; the collector only formats it."""

    requests: Mapping[str, int]
    denials: Mapping[str, int]
    audit: AuditNumbers
    sessions_active: int
    connections_open: int
    websockets_open: int
    upstream: UpstreamHealth | None
    wireguard: Sequence[WireguardPeer] | None = None
    """None: WireGuard is off (no families); a list, possibly empty: it is on."""
    now: float = 0.0


def _value(number: float | None) -> float:
    return math.nan if number is None else float(number)


class GatewayCollector(Collector):
    def __init__(self, snapshot: MetricsSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        requests = CounterMetricFamily(
            PREFIX + "requests",
            "Requests admitted to the CEMM or the gateway's app.",
            labels=["kind"],
        )
        for kind, value in sorted(snap.requests.items()):
            requests.add_metric([kind], value)
        yield requests

        denials = CounterMetricFamily(
            PREFIX + "denials", "Connections and requests the gateway refused.", labels=["reason"]
        )
        for reason, value in sorted(snap.denials.items()):
            denials.add_metric([reason], value)
        yield denials

        logins = CounterMetricFamily(
            PREFIX + "logins", "Successful logins (from the audit log).", labels=["method"]
        )
        for method, value in sorted(snap.audit.logins.items()):
            logins.add_metric([method], value)
        yield logins
        yield CounterMetricFamily(
            PREFIX + "login_failures",
            "Failed logins (from the audit log).",
            value=snap.audit.login_failures,
        )
        yield CounterMetricFamily(
            PREFIX + "bans", "Bans imposed after failed logins (audit log).", value=snap.audit.bans
        )
        yield GaugeMetricFamily(
            PREFIX + "bans_active", "Bans in force now.", value=snap.audit.bans_active
        )
        yield GaugeMetricFamily(
            PREFIX + "sessions_active", "Usable login sessions.", value=snap.sessions_active
        )
        yield GaugeMetricFamily(
            PREFIX + "connections_open", "Open client connections.", value=snap.connections_open
        )
        yield GaugeMetricFamily(
            PREFIX + "websockets_open",
            "Open WebSockets through the gateway.",
            value=snap.websockets_open,
        )
        yield from self._upstream(snap.upstream)
        if snap.wireguard is not None:
            yield from self._wireguard(snap.wireguard, snap.now)

    def _wireguard(self, peers: Sequence[WireguardPeer], now: float) -> Iterator[Metric]:
        yield GaugeMetricFamily(PREFIX + "wireguard_peers", "WireGuard peers.", value=len(peers))
        age = GaugeMetricFamily(
            PREFIX + "wireguard_peer_handshake_age_seconds",
            "Seconds since the peer's latest handshake (NaN: none yet).",
            labels=["peer"],
        )
        received = CounterMetricFamily(
            PREFIX + "wireguard_peer_received_bytes",
            "Bytes received from the peer (since the interface was created).",
            labels=["peer"],
        )
        sent = CounterMetricFamily(
            PREFIX + "wireguard_peer_sent_bytes",
            "Bytes sent to the peer (since the interface was created).",
            labels=["peer"],
        )
        for peer in peers:
            handshake = peer.latest_handshake
            age.add_metric([peer.name], _value(now - handshake if handshake else None))
            received.add_metric([peer.name], peer.rx_bytes)
            sent.add_metric([peer.name], peer.tx_bytes)
        yield age
        yield received
        yield sent

    def _upstream(self, health: UpstreamHealth | None) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            PREFIX + "upstream_up",
            "Whether the CEMM answered on this port at the last check (NaN: not checked).",
            labels=["port", "service"],
        )
        response = GaugeMetricFamily(
            PREFIX + "upstream_response_seconds",
            "The CEMM's response time at the last check (public API; WebSocket handshake).",
            labels=["port", "service"],
        )
        if health is not None:
            for port, service in ((health.http, "http"), (health.ws, "websocket")):
                labels = [str(port.port), service]
                up.add_metric(labels, _value(None if port.up is None else int(port.up)))
                response.add_metric(labels, _value(port.response_time))
        yield up
        yield response
        confirmed = None
        if health is not None and health.mac:
            confirmed = int(health.address is not None and health.confirmed_at is not None)
        yield GaugeMetricFamily(
            PREFIX + "upstream_identity_confirmed",
            "With [upstream] mac: 1 while the gateway forwards to the CEMM with that MAC, "
            "0 while it forwards nothing (NaN: the CEMM is known by address only).",
            value=_value(confirmed),
        )
        yield CounterMetricFamily(
            PREFIX + "upstream_address_changes",
            "Times the CEMM was found at a new address.",
            value=health.address_changes if health is not None else 0,
        )
        yield GaugeMetricFamily(
            PREFIX + "upstream_clock_drift_seconds",
            "The CEMM's clock minus the gateway's, corrected for the round trip "
            "(NaN: not measured yet).",
            value=_value(health.clock_drift if health is not None else None),
        )
        yield GaugeMetricFamily(
            PREFIX + "upstream_clock_drift_warning",
            "1 while the clock drift is above [upstream] clock_drift_threshold.",
            value=int(health.clock_drift_warning) if health is not None else 0,
        )
        yield GaugeMetricFamily(
            PREFIX + "upstream_last_check_timestamp_seconds",
            "When the CEMM was last checked (NaN: not yet).",
            value=_value(health.checked_at if health is not None else None),
        )


def render(snapshot: MetricsSnapshot) -> bytes:
    """The Prometheus text exposition of ``snapshot``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(snapshot))
    return generate_latest(registry)


FAMILIES: tuple[str, ...] = (
    "requests",
    "denials",
    "logins",
    "login_failures",
    "bans",
    "bans_active",
    "sessions_active",
    "connections_open",
    "websockets_open",
    "upstream_up",
    "upstream_response_seconds",
    "upstream_identity_confirmed",
    "upstream_address_changes",
    "upstream_clock_drift_seconds",
    "upstream_clock_drift_warning",
    "upstream_last_check_timestamp_seconds",
)
"""Every family name (without the prefix and ``_total``), for tests and documentation."""

WIREGUARD_FAMILIES: tuple[str, ...] = (
    "wireguard_peers",
    "wireguard_peer_handshake_age_seconds",
    "wireguard_peer_received_bytes",
    "wireguard_peer_sent_bytes",
)
"""The families added when WireGuard is enabled."""
