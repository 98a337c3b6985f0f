"""/metrics of a running gateway: counters that only grow, the build, request durations.

End to end on loopback: failed and successful logins and requests through the web port,
then the whole audit log purged (as ``audit_retention_days`` does to old entries) - the
login counters must not fall, since Prometheus would read that as a restart.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import PREFIX
from gateway.services import audit
from gateway.store import db
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread

pytestmark = pytest.mark.timeout(120)

PASSWORD = "correct-horse-battery-staple"
SCRAPE_TOKEN = "scrape-token-for-tests-0123456789"
AUTH = f'[auth]\ninitial_admin = "admin"\ninitial_admin_password = "{PASSWORD}"\n'

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def gateway(tmp_path: Path, simulator: SimulatorThread) -> Iterator[GatewayProcess]:
    config = GatewayConfig(
        tmp_path / "gw",
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=AUTH,
    )
    process = GatewayProcess(config, env={"CEMM_GATEWAY_METRICS__SCRAPE_TOKEN": SCRAPE_TOKEN})
    yield process
    process.close()


def _scrape(gateway: GatewayProcess) -> Samples:
    response = httpx.get(
        gateway.config.url("/metrics", port="admin"),
        headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _counters(samples: Samples) -> Samples:
    names = (PREFIX + "logins_total", PREFIX + "login_failures_total", PREFIX + "bans_total")
    return {key: value for key, value in samples.items() if key[0] in names}


def test_counters_survive_an_audit_purge_and_durations_are_observed(
    gateway: GatewayProcess,
) -> None:
    config = gateway.config
    first = _scrape(gateway)
    version = importlib.metadata.version("cemm-gateway")
    assert any(
        name == PREFIX + "build_info" and ("version", version) in labels and value == 1
        for (name, labels), value in first.items()
    )
    assert ("process_start_time_seconds", ()) in first

    login = config.url("/.gateway/api/login")
    for _ in range(2):
        wrong = httpx.post(login, json={"username": "admin", "password": "wrong"}, timeout=10)
        assert wrong.status_code == 401
    assert httpx.get(config.url("/api/v1/public/cemm"), timeout=5).status_code != 200
    with httpx.Client(timeout=10) as client:
        assert client.post(login, json={"username": "admin", "password": PASSWORD}).is_success
        assert client.get(config.url("/api/v1/public/cemm")).status_code == 200

    second = _scrape(gateway)
    failures = (PREFIX + "login_failures_total", ())
    logins = (PREFIX + "logins_total", (("method", "api"),))  # the JSON login
    assert second[failures] == first[failures] + 2
    assert second[logins] == first[logins] + 1

    def observed(outcome: str) -> float:
        key = (("outcome", outcome), ("port", str(config.http_port)))
        return second.get((PREFIX + "request_duration_seconds_count", key), 0.0)

    assert observed("ok") >= 1 and observed("denied") >= 1

    conn = db.connect(config.data_dir / "gateway.db")
    try:
        assert audit.purge(conn, before=time.time() + 3600) > 0
    finally:
        conn.close()
    third = _scrape(gateway)
    assert _counters(third) == _counters(second)
