"""Prometheus metrics: the gateway's live state, and counters kept in-process.

Most numbers are read at scrape time from state that exists anyway: the proxy's counters
(``ProxyState.requests``, ``ProxyState.denials``), the connection registry, the login
snapshot, the upstream monitor's report (``ProxyState.cemm``) and the ban table (read just
before, on the web app's database worker thread, never on the proxy's path).
:class:`GatewayCollector` turns a :class:`MetricsSnapshot` of those into metric families.

Two kinds of numbers are kept here, process-wide, because nothing else keeps them as
counters must be kept (monotonic, from zero at start-up - what Prometheus's ``rate()`` and
``increase()`` expect):

- :data:`EVENTS`: logins, failed logins and bans, counted as the audit log records them
  (:func:`gateway.services.audit.record` calls :meth:`EventCounters.count`). Counting rows
  of the audit log instead would fall when old entries are purged, which Prometheus reads
  as a restart.
- :data:`REQUEST_DURATIONS`: the request-duration histogram, observed by the
  ``addons/request_metrics.py`` addon when a request ends.

Families (all prefixed ``cemm_gateway_``)::

    build_info{version,python}                gauge    always 1; the labels say what runs
    requests_total{kind}                      counter  admitted requests, by how
    denials_total{reason}                     counter  refused connections / requests
    request_duration_seconds{port,outcome}    histogram  request start to response
    logins_total{method}                      counter  successful logins
    login_failures_total                      counter  failed logins
    bans_total                                counter  bans imposed
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

and prometheus_client's standard ``process_*`` families (CPU seconds, resident memory,
open file descriptors, start time; on Linux). Gauges that have no value yet (no check so
far) are exported as NaN rather than left out, so an alert on them never silently matches
nothing. The WireGuard families appear only with ``[wireguard] enabled``; their numbers
come from the WireGuard manager's latest ``wg show`` reading.
"""

from __future__ import annotations

import math
import platform
import sqlite3
import threading
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from gateway.upstream.health import UpstreamHealth
from gateway.version import version

PREFIX = "cemm_gateway_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class EventCounts:
    """The event counters at one moment (see :class:`EventCounters`)."""

    logins: Mapping[str, int] = field(default_factory=dict)
    login_failures: int = 0
    bans: int = 0


class EventCounters:
    """Logins (by method), failed logins and bans, counted since the process started.

    :meth:`count` is called for every audit entry written, on whichever thread writes it,
    so it returns at once for the events it does not count and takes a lock for those it
    does. An entry whose transaction is rolled back is still counted: the attempt happened.
    """

    # Present from the start, so that rate() and absent() work before the first login.
    KNOWN_METHODS = ("password", "api", "oidc")  # the login page, JSON login, single sign-on

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logins: dict[str, int] = dict.fromkeys(self.KNOWN_METHODS, 0)
        self._failures = 0
        self._bans = 0

    def count(self, event: str, detail: Mapping[str, Any]) -> None:
        if event == "login":
            method = str(detail.get("method") or "password")
            with self._lock:
                self._logins[method] = self._logins.get(method, 0) + 1
        elif event == "login.failure":
            with self._lock:
                self._failures += 1
        elif event == "ban":
            with self._lock:
                self._bans += 1

    def snapshot(self) -> EventCounts:
        with self._lock:
            return EventCounts(dict(self._logins), self._failures, self._bans)


EVENTS = EventCounters()
"""The process's event counters, fed by :func:`gateway.services.audit.record`."""


# Seconds: a page from the CEMM takes tens of milliseconds, a refusal well under one.
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip


class DurationHistogram:
    """Request durations by (port, outcome), in :data:`DURATION_BUCKETS`.

    :meth:`observe` runs once per request on the proxy's event loop, so it does the least
    it can: one dict lookup, one bisect, two additions. Counts are kept per bucket and made
    cumulative only when scraped.
    """

    def __init__(self, buckets: Sequence[float] = DURATION_BUCKETS) -> None:
        self.buckets = tuple(buckets)
        # Per series: one count per bucket, one for +Inf, then the sum of the observations.
        self._series: dict[tuple[int, str], list[float]] = {}

    def observe(self, port: int, outcome: str, seconds: float) -> None:
        series = self._series.get((port, outcome))
        if series is None:
            series = self._series.setdefault((port, outcome), [0.0] * (len(self.buckets) + 2))
        series[bisect_left(self.buckets, seconds)] += 1
        series[-1] += seconds

    def samples(self) -> list[tuple[int, str, list[tuple[str, float]], float]]:
        """Per series: port, outcome, cumulative (le, count) pairs ending in +Inf, sum."""
        found = []
        for (port, outcome), series in sorted(self._series.items()):
            counts = list(series)
            cumulative: list[tuple[str, float]] = []
            running = 0.0
            for bound, count in zip((*map(str, self.buckets), "+Inf"), counts[:-1], strict=True):
                running += count
                cumulative.append((bound, running))
            found.append((port, outcome, cumulative, counts[-1]))
        return found


REQUEST_DURATIONS = DurationHistogram()
"""The process's request-duration histogram, fed by ``addons/request_metrics.py``."""


def read_bans_active(conn: sqlite3.Connection, *, now: float) -> int:
    """Bans in force at ``now``."""
    row = conn.execute(
        "SELECT count(*) FROM ban WHERE until > ? AND lifted_at IS NULL", (now,)
    ).fetchone()
    return int(row[0])


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
    events: EventCounts
    bans_active: int
    sessions_active: int
    connections_open: int
    websockets_open: int
    upstream: UpstreamHealth | None
    wireguard: Sequence[WireguardPeer] | None = None
    """None: WireGuard is off (no families); a list, possibly empty: it is on."""
    now: float = 0.0
    durations: DurationHistogram | None = None
    version: str = field(default_factory=version)


def _value(number: float | None) -> float:
    return math.nan if number is None else float(number)


class GatewayCollector(Collector):
    def __init__(self, snapshot: MetricsSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        build = GaugeMetricFamily(
            PREFIX + "build_info",
            "Always 1; the labels say which version runs, on which Python.",
            labels=["version", "python"],
        )
        build.add_metric([snap.version, platform.python_version()], 1)
        yield build
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

        if snap.durations is not None:
            yield self._durations(snap.durations)

        logins = CounterMetricFamily(
            PREFIX + "logins", "Successful logins since the gateway started.", labels=["method"]
        )
        for method, value in sorted(snap.events.logins.items()):
            logins.add_metric([method], value)
        yield logins
        yield CounterMetricFamily(
            PREFIX + "login_failures",
            "Failed logins since the gateway started.",
            value=snap.events.login_failures,
        )
        yield CounterMetricFamily(
            PREFIX + "bans",
            "Bans imposed after failed logins since the gateway started.",
            value=snap.events.bans,
        )
        yield GaugeMetricFamily(
            PREFIX + "bans_active", "Bans in force now.", value=snap.bans_active
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

    def _durations(self, histogram: DurationHistogram) -> Metric:
        family = HistogramMetricFamily(
            PREFIX + "request_duration_seconds",
            "From a request's start to its response (a WebSocket: to the handshake's), by "
            "the gateway's port and outcome: ok (answered), denied (refused by the "
            "gateway), error (no answer, or a 5xx).",
            labels=["port", "outcome"],
        )
        for port, outcome, buckets, total in histogram.samples():
            family.add_metric([str(port), outcome], buckets, total)
        return family

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


def render(snapshot: MetricsSnapshot, *, process: bool = True) -> bytes:
    """The Prometheus text exposition of ``snapshot``, and the process's own metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(snapshot))
    if process:
        ProcessCollector(registry=registry)
    return generate_latest(registry)


FAMILIES: tuple[str, ...] = (
    "build_info",
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

HISTOGRAM_FAMILIES: tuple[str, ...] = ("request_duration_seconds",)
"""The histograms (always declared; a series appears once a request on it ends)."""

PROCESS_FAMILIES: tuple[str, ...] = (
    "process_cpu_seconds",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
)
"""prometheus_client's process families (no prefix; Linux only)."""

WIREGUARD_FAMILIES: tuple[str, ...] = (
    "wireguard_peers",
    "wireguard_peer_handshake_age_seconds",
    "wireguard_peer_received_bytes",
    "wireguard_peer_sent_bytes",
)
"""The families added when WireGuard is enabled."""
