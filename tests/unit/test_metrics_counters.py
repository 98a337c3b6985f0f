"""Counters that behave like counters, the build's identity and the duration histogram.

Logins, failures and bans are counted as the audit log records them, so purging old audit
entries (``audit_retention_days``) cannot make them fall; ``build_info`` names the installed
version; the request-duration histogram is cumulative and cheap enough for every request.
"""

from __future__ import annotations

import importlib.metadata
import math
import time
import tomllib
from pathlib import Path

from mitmproxy.test import tflow
from prometheus_client.parser import text_string_to_metric_families

from addons.base import DENIED
from addons.request_log import STARTED
from addons.request_metrics import RequestMetrics
from gateway.metrics import (
    EVENTS,
    PREFIX,
    PROCESS_FAMILIES,
    DurationHistogram,
    EventCounters,
    EventCounts,
    MetricsSnapshot,
    render,
)
from gateway.services import audit
from gateway.store import db

ROOT = Path(__file__).resolve().parents[2]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _snapshot(
    events: EventCounts | None = None, durations: DurationHistogram | None = None
) -> MetricsSnapshot:
    return MetricsSnapshot(
        requests={},
        denials={},
        events=events or EVENTS.snapshot(),
        bans_active=0,
        sessions_active=0,
        connections_open=0,
        websockets_open=0,
        upstream=None,
        durations=durations,
    )


def _counters(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    names = (PREFIX + "logins_total", PREFIX + "login_failures_total", PREFIX + "bans_total")
    return {key: value for key, value in _samples(text).items() if key[0] in names}


def test_an_entry_is_counted_only_once_its_transaction_commits(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "data" / "gateway.db")
    try:
        before = _counters(render(_snapshot(), process=False).decode())
        try:
            with db.transaction(conn):
                audit.record(conn, "eve", "login.failure")
                # Not yet committed: a scrape now must not see it.
                assert _counters(render(_snapshot(), process=False).decode()) == before
                raise RuntimeError("the change fails after its audit entry")
        except RuntimeError:
            pass
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0
        assert _counters(render(_snapshot(), process=False).decode()) == before
        with db.transaction(conn):
            audit.record(conn, "eve", "login.failure")
        key = (PREFIX + "login_failures_total", ())
        after = _counters(render(_snapshot(), process=False).decode())
        assert after[key] == before.get(key, 0.0) + 1
        audit.record(conn, "eve", "login.failure")  # outside a transaction: committed at once
        assert _counters(render(_snapshot(), process=False).decode())[key] == after[key] + 1
    finally:
        conn.close()


def test_counters_never_decrease_across_an_audit_purge(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "data" / "gateway.db")
    try:
        before = _counters(render(_snapshot(), process=False).decode())
        with db.transaction(conn):
            audit.record(conn, "admin", "login", method="password", session="s1")
            audit.record(conn, "ann", "login", method="oidc", session="s2")
            audit.record(conn, "eve", "login.failure")
            audit.record(conn, "eve", "login.failure")
            audit.record(conn, "system", "ban", subject="address:10.0.0.9", until=2e9)
            audit.record(conn, "admin", "user.add", user="bob")  # not counted
        recorded = _counters(render(_snapshot(), process=False).decode())
        assert audit.purge(conn, before=time.time() + 3600) == 6
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0
        purged = _counters(render(_snapshot(), process=False).decode())
    finally:
        conn.close()

    def delta(key: tuple[str, tuple[tuple[str, str], ...]]) -> float:
        return recorded[key] - before.get(key, 0.0)

    assert delta((PREFIX + "logins_total", (("method", "password"),))) == 1
    assert delta((PREFIX + "logins_total", (("method", "oidc"),))) == 1
    assert delta((PREFIX + "login_failures_total", ())) == 2
    assert delta((PREFIX + "bans_total", ())) == 1
    assert purged == recorded  # the purge changed nothing


def test_event_counters_start_at_zero_with_the_known_methods() -> None:
    counts = EventCounters().snapshot()
    assert counts == EventCounts({"password": 0, "api": 0, "oidc": 0}, 0, 0)
    counters = EventCounters()
    counters.count("login", {"method": "password+totp"})
    counters.count("login", {})
    counters.count("login.failure", {})
    counters.count("ban.lift", {})
    assert counters.snapshot() == EventCounts(
        {"password": 1, "api": 0, "oidc": 0, "password+totp": 1}, 1, 0
    )


def test_build_info_carries_the_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert importlib.metadata.version("cemm-gateway") == version
    samples = _samples(render(_snapshot(), process=False).decode())
    (labels,) = [dict(key[1]) for key in samples if key[0] == PREFIX + "build_info"]
    assert labels["version"] == version
    assert labels["python"].count(".") == 2
    assert samples[(PREFIX + "build_info", tuple(sorted(labels.items())))] == 1


def test_process_metrics_are_exported() -> None:
    families = {f.name for f in text_string_to_metric_families(render(_snapshot()).decode())}
    assert set(PROCESS_FAMILIES) <= families


def test_duration_histogram_is_cumulative() -> None:
    histogram = DurationHistogram(buckets=(0.01, 0.1, 1.0))
    for seconds in (0.001, 0.01, 0.05, 0.5, 3.0):
        histogram.observe(80, "ok", seconds)
    histogram.observe(8443, "denied", 0.002)
    samples = _samples(render(_snapshot(durations=histogram), process=False).decode())
    name = PREFIX + "request_duration_seconds"

    def bucket(le: str, port: str = "80", outcome: str = "ok") -> float:
        return samples[(name + "_bucket", (("le", le), ("outcome", outcome), ("port", port)))]

    assert [bucket(le) for le in ("0.01", "0.1", "1.0", "+Inf")] == [2, 3, 4, 5]
    assert samples[(name + "_count", (("outcome", "ok"), ("port", "80")))] == 5
    assert math.isclose(samples[(name + "_sum", (("outcome", "ok"), ("port", "80")))], 3.561)
    assert bucket("0.01", "8443", "denied") == 1


def _flow(port: int, *, status: int | None = 200, denied: bool = False) -> tflow.HTTPFlow:
    flow = tflow.tflow(resp=status is not None)
    if flow.response is not None and status is not None:
        flow.response.status_code = status
    flow.client_conn.sockname = ("127.0.0.1", port)
    flow.metadata[STARTED] = time.monotonic() - 0.02
    if denied:
        flow.metadata[DENIED] = "not_allowlisted"
    return flow


def test_the_addon_labels_by_port_and_outcome_and_counts_once() -> None:
    histogram = DurationHistogram()
    addon = RequestMetrics(histogram)
    ok = _flow(80)
    addon.response(ok)
    addon.error(ok)  # the client went away after its response: still one request
    addon.response(_flow(80, denied=True))
    addon.error(_flow(8090, status=None))
    addon.response(_flow(80, status=502))
    counts = {
        (port, outcome): int(buckets[-1][1]) for port, outcome, buckets, _ in histogram.samples()
    }
    assert counts == {(80, "ok"): 1, (80, "denied"): 1, (8090, "error"): 1, (80, "error"): 1}
    ((_, _, _, total),) = [s for s in histogram.samples() if s[:2] == (80, "ok")]
    assert 0.02 <= total < 1.0


def test_observing_is_cheap() -> None:
    """Well under the ~0.1 ms of CPU per request the addon chain's dispatch was worth
    optimising for (gateway/proxy/engine.py): a few microseconds here."""
    addon = RequestMetrics(DurationHistogram())
    flows = [_flow(80 + i % 3) for i in range(2000)]
    started = time.perf_counter()
    for flow in flows:
        addon.response(flow)
    per_request = (time.perf_counter() - started) / len(flows)
    assert per_request < 50e-6, f"{per_request * 1e6:.1f} us per request"
