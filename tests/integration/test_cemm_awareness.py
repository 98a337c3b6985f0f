"""Knowing the CEMM, end to end on loopback: clock drift, /metrics, /healthz, following a
MAC, and logs without secrets. Every gateway here is a real process (``GatewayProcess``)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import FAMILIES, PREFIX
from gateway.services import audit
from gateway.simulator.config import DEFAULT_MAC
from gateway.store import db
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread, cli

pytestmark = pytest.mark.timeout(120)

PASSWORD = "correct-horse-battery-staple"
SCRAPE_TOKEN = "scrape-token-for-tests-0123456789"
OTHER_MAC = "02:00:00:00:00:01"
AUTH = f'[auth]\ninitial_admin = "admin"\ninitial_admin_password = "{PASSWORD}"\n'
TRUSTED = '[auth]\ntrusted_networks = ["127.0.0.0/8", "::1/128"]\n'


def _env(**upstream: Any) -> dict[str, str]:
    env = {
        "CEMM_GATEWAY_UPSTREAM__HEALTH_INTERVAL": "1",
        "CEMM_GATEWAY_METRICS__SCRAPE_TOKEN": SCRAPE_TOKEN,
    }
    for key, value in upstream.items():
        env[f"CEMM_GATEWAY_{key.upper()}"] = str(value)
    return env


def _start(
    tmp_path: Path, simulator: SimulatorThread, extra: str = TRUSTED, **env: Any
) -> GatewayProcess:
    config = GatewayConfig(
        tmp_path / "gw",
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=extra,
    )
    return GatewayProcess(config, env=_env(**env))


def _wait(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _healthz(gateway: GatewayProcess) -> dict[str, Any]:
    """The details of /healthz, as a monitoring system with the scrape token reads them."""
    response = httpx.get(
        gateway.config.url("/healthz", port="admin"),
        headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"},
        timeout=5,
    )
    assert response.status_code == 200
    return response.json()


def _metrics(gateway: GatewayProcess, **kwargs: Any) -> httpx.Response:
    return httpx.get(gateway.config.url("/metrics", port="admin"), timeout=5, **kwargs)


def _scrape(gateway: GatewayProcess) -> dict[str, list[Any]]:
    response = _metrics(gateway, headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def _audit(gateway: GatewayProcess, event: str) -> list[audit.AuditEntry]:
    conn = db.connect(gateway.config.data_dir / "gateway.db")
    try:
        return [e for e in audit.entries(conn) if e.event == event]
    finally:
        conn.close()


@pytest.fixture
def skewed(request: pytest.FixtureRequest) -> Iterator[SimulatorThread]:
    sim = SimulatorThread(clock_skew=request.param)
    yield sim
    sim.close()


@pytest.mark.parametrize(("skewed", "warned"), [(120.0, True), (2.0, False)], indirect=["skewed"])
def test_clock_drift_warning_and_metric(
    tmp_path: Path, skewed: SimulatorThread, warned: bool
) -> None:
    skew = skewed.sim.clock_skew
    gateway = _start(tmp_path, skewed)
    try:
        upstream = _wait(
            lambda: (
                (u := _healthz(gateway)["upstream"])["clock_drift"]["seconds"] is not None and u
            ),
            what="a drift measurement",
        )
        time.sleep(3.5)  # several more checks: still one warning per episode
        status = _healthz(gateway)
        upstream = status["upstream"]
        drift = upstream["clock_drift"]["seconds"]
        assert abs(drift - skew) < 1.0, drift
        assert upstream["clock_drift"]["warning"] is warned
        warnings = [w for w in upstream["warnings"] if "clock" in w]
        assert len(warnings) == int(warned)
        # The dashboard reads status()["cemm"]: the drift line, and the warning.
        facts = status["cemm"]
        assert facts["clock drift"].startswith(f"{drift:+.1f} s")
        assert ("warning" in facts) is warned

        samples = _scrape(gateway)
        (gauge,) = samples[PREFIX + "upstream_clock_drift_seconds"]
        assert abs(gauge.value - skew) < 1.0
        (flag,) = samples[PREFIX + "upstream_clock_drift_warning"]
        assert flag.value == int(warned)

        assert len(_audit(gateway, "upstream.clock_drift")) == int(warned)
        assert gateway.log().count("the CEMM's clock is") == int(warned)
        print(f"skew {skew:+.1f} s measured {drift:+.3f} s (error {drift - skew:+.3f} s)")
    finally:
        gateway.close()


def test_metrics_need_the_scrape_token_or_an_admin(
    tmp_path: Path, simulator: SimulatorThread
) -> None:
    gateway = _start(tmp_path, simulator, extra=AUTH)
    config = gateway.config
    try:
        result = cli(
            "user", "add", "ann", "--role", "user", "--password-stdin",
            config=config.path, input="a-user-password-123\n",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        refused = _metrics(gateway)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "cemm_gateway_" not in refused.text
        assert _metrics(gateway, headers={"Authorization": "Bearer wrong"}).status_code == 401

        with httpx.Client(timeout=10) as admin:
            login = admin.post(
                config.url("/.gateway/api/login"), json={"username": "admin", "password": PASSWORD}
            )
            assert login.status_code == 200
            assert admin.get(config.url("/metrics", port="admin")).status_code == 200
        with httpx.Client(timeout=10) as user:
            login = user.post(
                config.url("/.gateway/api/login"),
                json={"username": "ann", "password": "a-user-password-123"},
            )
            assert login.status_code == 200
            assert user.get(config.url("/metrics", port="admin")).status_code == 401
        # A failed login, and traffic, so that the counters have something to say.
        httpx.post(
            config.url("/.gateway/api/login"), json={"username": "admin", "password": "nope"}
        )
        _wait(lambda: _healthz(gateway)["upstream"]["ports"]["ws"]["up"], what="a check")
        samples = _scrape(gateway)
        assert {PREFIX + name for name in FAMILIES} <= set(samples)

        def value(name: str, **labels: str) -> float:
            return next(
                s.value
                for s in samples[PREFIX + name]
                if all(s.labels[k] == v for k, v in labels.items())
            )

        assert value("logins", method="api") == 2
        assert value("login_failures") >= 1
        assert value("sessions_active") == 2
        assert value("upstream_up", service="http") == 1
        assert value("upstream_up", service="websocket") == 1
        assert 0 < value("upstream_response_seconds", service="http") < 2
        assert not math.isnan(value("upstream_clock_drift_seconds"))
        # The metrics exist on the admin listener only: on the web port, /metrics is the
        # CEMM's path (here: the simulator's 404), never the gateway's numbers.
        with httpx.Client(timeout=10) as admin:
            admin.post(
                config.url("/.gateway/api/login"), json={"username": "admin", "password": PASSWORD}
            )
            web = admin.get(config.url("/metrics"))
            assert "cemm_gateway_" not in web.text
    finally:
        gateway.close()


def test_healthz_stays_up_when_the_cemm_is_down(tmp_path: Path, simulator: SimulatorThread) -> None:
    gateway = _start(tmp_path, simulator)
    try:
        _wait(lambda: _healthz(gateway)["upstream"]["ports"]["http"]["up"], what="CEMM up")
        simulator.stop()
        status = _wait(
            lambda: (s := _healthz(gateway))["upstream"]["ports"]["http"]["up"] is False and s,
            what="CEMM down",
        )
        assert status["status"] == "ok"
        assert any("has not answered on port" in w for w in status["upstream"]["warnings"])
        # Without credentials: up, and which CEMM port answers - no address, MAC or sessions.
        anonymous = httpx.get(gateway.config.url("/healthz", port="admin"), timeout=5)
        assert anonymous.status_code == 200
        body = anonymous.json()
        assert set(body) == {"status", "cemm"} and set(body["cemm"]) == {"web", "websocket"}
        assert body["cemm"]["web"] == "down"
        assert "127.0.0.1" not in anonymous.text
        samples = _scrape(gateway)
        assert [
            s.value for s in samples[PREFIX + "upstream_up"] if s.labels["service"] == "http"
        ] == [0]
        page = httpx.get(gateway.config.url("/api/v1/public/cemm"), timeout=10)
        assert page.status_code == 502
        assert "The CEMM at 127.0.0.1 has not answered on port" in page.text
        simulator.restart()
        _wait(lambda: _healthz(gateway)["upstream"]["ports"]["http"]["up"], what="CEMM back")
    finally:
        gateway.close()


def _only_identity_checks(sim: SimulatorThread) -> None:
    for request in sim.sim.requests:
        assert request.method == "GET" and request.path == "/api/v1/public/cemm", request
        assert request.header("user-agent") == "cemm-gateway-monitor", request
        assert request.header("x-forwarded-for") is None, request
        assert not request.websocket


def test_following_a_mac_forwards_only_to_the_confirmed_device(
    tmp_path: Path, simulator: SimulatorThread
) -> None:
    simulator.sim.mac = OTHER_MAC  # not the CEMM the gateway is told about
    gateway = _start(tmp_path, simulator, upstream__mac=DEFAULT_MAC)
    url = gateway.config.url("/api/v1/public/meters")
    try:
        _wait(lambda: _healthz(gateway)["upstream"]["checked_at"], what="a first check")
        for _ in range(5):
            page = httpx.get(url, timeout=5)
            assert page.status_code == 503
            assert f"A different device (MAC {OTHER_MAC}) answers at 127.0.0.1" in page.text
        time.sleep(1.5)
        assert simulator.sim.requests, "the identity check should have reached the device"
        _only_identity_checks(simulator)
        samples = _scrape(gateway)
        (confirmed,) = samples[PREFIX + "upstream_identity_confirmed"]
        assert confirmed.value == 0

        simulator.sim.mac = DEFAULT_MAC  # the right device answers now
        _wait(lambda: httpx.get(url, timeout=5).status_code == 200, what="confirmation")
        assert _healthz(gateway)["upstream"]["address"] == "127.0.0.1"

        simulator.sim.mac = OTHER_MAC  # and is replaced by another one
        _wait(lambda: httpx.get(url, timeout=5).status_code == 503, what="the check to notice")
        simulator.sim.clear_traffic()
        for _ in range(5):
            assert httpx.get(url, timeout=5).status_code == 503
        time.sleep(1.5)
        _only_identity_checks(simulator)
        assert len(_audit(gateway, "upstream.foreign_device")) == 1
    finally:
        gateway.close()


def test_logs_carry_request_ids_and_no_secrets(tmp_path: Path, simulator: SimulatorThread) -> None:
    gateway = _start(
        tmp_path,
        simulator,
        extra=AUTH,
        log__format="json",
        log__access="true",
    )
    config = gateway.config
    try:
        with httpx.Client(timeout=10) as client:
            login = client.post(
                config.url("/.gateway/api/login"), json={"username": "admin", "password": PASSWORD}
            )
            assert login.status_code == 200
            cookie = client.cookies.get("cemm_session")
            assert cookie
            for _ in range(3):
                assert (
                    client.get(config.url("/api/v1/public/cemm?token=query-secret-1")).status_code
                    == 200
                )
            client.get(config.url("/metrics", port="admin"))
        httpx.get(
            config.url("/metrics", port="admin"),
            headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"},
            timeout=5,
        )
        time.sleep(0.5)
        text = gateway.log()
        for secret in (cookie, PASSWORD, "query-secret-1", SCRAPE_TOKEN):
            assert secret not in text
        entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        access = [e for e in entries if e["logger"] == "cemm_gateway.access"]
        proxied = [e for e in access if e.get("path") == "/api/v1/public/cemm"]
        assert len(proxied) == 3
        assert all(len(e["request_id"]) == 12 and e["status"] == 200 for e in proxied)
        assert len({e["request_id"] for e in access}) == len(access)
    finally:
        gateway.close()
