"""One health check of the CEMM: identity, response time, clock drift, episodes, texts."""

from __future__ import annotations

import asyncio
import json
import math
import ssl
import time

import httpx
import pytest

from gateway.clock import ManualClock
from gateway.netutil import free_port
from gateway.upstream import health
from gateway.upstream.health import (
    DriftEstimator,
    DriftWatch,
    HealthChecker,
    PortHealth,
    UpstreamHealth,
    drift_bounds,
    estimate_drift,
    parse_identity,
    parse_mac,
)

MAC = "80:1F:12:47:06:B0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("80:1f:12:47:06:b0", MAC),
        ("80-1F-12-47-06-B0", MAC),
        (" 80:1F:12:47:06:B0 ", MAC),
        ("80:1F:12-47:06:B0", None),
        ("80:1F:12:47:06", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_parse_mac(text: object, expected: str | None) -> None:
    assert parse_mac(text) == expected


def test_parse_identity_reads_the_documented_shape() -> None:
    document = {
        "id": 24000293,
        "name": "Development",
        "mac": "80:1f:12:47:06:b0",
        "local_ip": "192.168.2.34",
        "version": "1.10.0",
        "time": 1736428623,
    }
    identity = parse_identity(document)
    assert identity is not None
    assert identity.mac == MAC
    assert identity.device_time == 1736428623
    assert identity.local_ip == "192.168.2.34"
    assert parse_identity([1, 2]) is None
    assert parse_identity({"time": True, "mac": 5}) == parse_identity({})


def test_drift_uses_the_middle_of_the_round_trip_and_the_truncated_second() -> None:
    # Sent at 1000.0, answered at 1000.2: the CEMM read its clock at about 1000.1. It said
    # 1120 (truncated), so its clock read 1120.5 on average: 120.4 s ahead.
    assert estimate_drift(1120, 1000.0, 1000.2) == pytest.approx(120.4)
    assert estimate_drift(998, 1000.0, 1000.0) == pytest.approx(-1.5)


def _checker(handler, clock: ManualClock) -> HealthChecker:
    ticks = iter(range(1000))
    return HealthChecker(
        http_port=80,
        ws_port=8090,
        timeout=1.0,
        clock=clock,
        monotonic=lambda: float(next(ticks)) * 0.01,
        transport=httpx.MockTransport(handler),
    )


@pytest.mark.parametrize("skew", [120.0, 2.0, -45.3, 0.0])
def test_check_api_measures_drift_within_half_a_second(skew: float) -> None:
    clock = ManualClock(1_700_000_000.25)
    round_trip = 0.3

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/public/cemm"
        assert request.headers["user-agent"] == "cemm-gateway-monitor"
        clock.advance(round_trip / 2)
        device = int(clock.now() + skew)
        clock.advance(round_trip / 2)
        return httpx.Response(200, json={"mac": MAC, "time": device})

    check = asyncio.run(_checker(handler, clock).check_api("192.168.2.34"))
    assert check.ok and check.answered and check.confirms(MAC)
    assert check.drift is not None
    assert abs(check.drift - skew) <= 0.5 + 1e-9
    assert check.response_time == pytest.approx(0.01)


def test_check_api_without_the_document_does_not_confirm() -> None:
    clock = ManualClock()
    check = asyncio.run(
        _checker(lambda r: httpx.Response(403, text="Geen toegang"), clock).check_api("10.0.0.2")
    )
    assert check.answered and not check.ok and not check.confirms(MAC)
    assert check.error == "answered HTTP 403"
    check = asyncio.run(
        _checker(lambda r: httpx.Response(200, text="<html>"), clock).check_api("x")
    )
    assert check.answered and not check.ok
    assert "not with the CEMM's device document" in (check.error or "")


def test_check_api_that_cannot_connect_did_not_answer() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    check = asyncio.run(_checker(refuse, ManualClock()).check_api("10.0.0.2"))
    assert not check.answered and check.error == "connection refused or unreachable"


def test_another_mac_does_not_confirm() -> None:
    body = json.dumps({"mac": "02:00:00:00:00:01", "time": 1})
    check = asyncio.run(
        _checker(lambda r: httpx.Response(200, text=body), ManualClock()).check_api("10.0.0.2")
    )
    assert check.ok and not check.confirms(MAC)


def test_drift_watch_warns_once_per_episode_with_hysteresis() -> None:
    watch = DriftWatch(30.0)
    changes = [watch.update(d) for d in (1.0, 31.0, 120.0, 29.0, 28.0, 26.9, 25.0, -31.0)]
    assert changes == [None, "began", None, None, None, "ended", None, "began"]
    assert watch.warning and watch.drift == -31.0


def test_port_health_remembers_since_when_it_fails() -> None:
    port = PortHealth(80)
    port.record(ok=True, now=100.0, response_time=0.004, error=None)
    port.record(ok=False, now=110.0, response_time=None, error="no answer (timed out)")
    port.record(ok=False, now=120.0, response_time=None, error="no answer (timed out)")
    assert port.failing_since == 110.0 and port.last_ok == 100.0 and port.up is False
    port.record(ok=True, now=130.0, response_time=0.002, error=None)
    assert port.failing_since is None and port.response_time == 0.002


def test_texts_say_plainly_what_is_wrong() -> None:
    since = time.mktime((2025, 1, 9, 10, 42, 5, 0, 0, -1))
    health = UpstreamHealth(http=PortHealth(80), ws=PortHealth(8090), address="192.168.2.34")
    assert (
        health.failing_text(80, since)
        == "The CEMM at 192.168.2.34 has not answered on port 80 since 10:42."
    )
    health = UpstreamHealth(http=PortHealth(80), ws=PortHealth(8090), mac=MAC)
    assert "has not found the CEMM (MAC 80:1F:12:47:06:B0)" in health.unavailable_text()
    health.last_address, health.lost_since = "192.168.2.34", since
    assert "has not answered at 192.168.2.34 since 10:42" in health.unavailable_text()
    health.foreign_device = ("192.168.2.34", "02:00:00:00:00:01")
    assert "A different device (MAC 02:00:00:00:00:01) answers at 192.168.2.34" in (
        health.unavailable_text()
    )


def test_clock_warning_on_the_dashboard() -> None:
    health = UpstreamHealth(
        http=PortHealth(80),
        ws=PortHealth(8090),
        address="192.168.2.34",
        clock_drift=-120.4,
        clock_drift_warning=True,
    )
    (warning,) = health.warnings()
    assert warning.startswith("The CEMM's clock is 120 s behind the gateway's (more than 30 s)")
    assert health.as_dict()["clock_drift"] == {
        "seconds": -120.4,
        "threshold": 30.0,
        "warning": True,
    }
    health.clock_drift_warning = False
    assert health.warnings() == []
    assert not math.isnan(health.clock_drift)


def test_drift_bounds_contain_the_truth() -> None:
    low, high = drift_bounds(1120, 1000.0, 1000.2)
    assert (low, high) == pytest.approx((119.8, 121.0))


def test_estimator_narrows_to_well_under_a_tenth_of_a_second() -> None:
    # A CEMM 120.37 s ahead, checked every 10.13 s with a 4 ms round trip: each reading is
    # truncated at a different point of its second.
    true_drift, estimator, start = 120.37, DriftEstimator(), 1_700_000_000.0
    single_errors, errors = [], []
    for n in range(8):
        sent = start + n * 10.13
        received = sent + 0.004
        device_time = math.floor(sent + 0.002 + true_drift)
        single_errors.append(abs(estimate_drift(device_time, sent, received) - true_drift))
        errors.append(abs(estimator.add(drift_bounds(device_time, sent, received)) - true_drift))
    assert max(single_errors) <= 0.5
    assert errors[-1] < 0.1 < max(single_errors)


def test_estimator_starts_over_when_the_clock_is_set() -> None:
    estimator = DriftEstimator()
    for n in range(4):
        estimator.add(drift_bounds(1000 + 120 + n * 10, 1000.0 + n * 10, 1000.01 + n * 10))
    # NTP corrects the CEMM's clock: the new reading contradicts the old intervals.
    assert abs(estimator.add(drift_bounds(1050, 1050.0, 1050.01))) < 0.6


def test_checks_share_one_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    # Building one loads the CA bundle: ~30 ms in which the event loop serves nobody.
    made: list[ssl.SSLContext] = []
    real = ssl.create_default_context

    def counting(*args, **kwargs) -> ssl.SSLContext:
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    health._tls_context.cache_clear()
    checker = HealthChecker(http_port=free_port(), ws_port=free_port(), timeout=1.0)
    for _ in range(3):
        check = asyncio.run(checker.check_api("127.0.0.1"))
        assert not check.answered
    assert len(made) == 1
    health._tls_context.cache_clear()
