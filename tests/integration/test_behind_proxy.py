"""Behind a reverse proxy that terminates HTTPS (docs/exposing.md, third way): the gateway
speaks plain HTTP to the proxy, and what the browser sees must still be right - cookies
marked ``Secure``. Here the proxy is this test, connecting from 127.0.0.2, which is listed
in ``trusted_proxies``; the browser's address and scheme come in its forwarding headers."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread

PASSWORD = "correct-horse-battery-staple"
BROWSER = "192.168.1.50"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    simulator = SimulatorThread()
    config = GatewayConfig(
        tmp_path_factory.mktemp("behind-proxy"),
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=(
            '[allowlist]\ntrusted_proxies = ["127.0.0.2"]\n'
            f'[auth]\ninitial_admin = "admin"\ninitial_admin_password = "{PASSWORD}"\n'
            "[auth.bruteforce]\nnever_ban = []\n"
        ),
    )
    process = GatewayProcess(config)
    try:
        yield process
    finally:
        process.close()
        simulator.close()


def _login(gateway: GatewayProcess, proto: str | None) -> httpx.Response:
    headers = {"X-Forwarded-For": BROWSER}
    if proto is not None:
        headers["X-Forwarded-Proto"] = proto
    proxy_side = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=proxy_side, timeout=10) as proxy:
        response = proxy.post(
            gateway.config.url("/.gateway/api/login"),
            json={"username": "admin", "password": PASSWORD},
            headers=headers,
        )
    assert response.status_code == 200, response.text
    return response


def _attributes(response: httpx.Response) -> list[str]:
    (cookie,) = [
        c for c in response.headers.get_list("set-cookie") if c.startswith("cemm_session=")
    ]
    return [part.strip().lower() for part in cookie.split(";")[1:]]


def test_the_session_cookie_is_secure_when_the_browser_used_https(gateway: GatewayProcess) -> None:
    attributes = _attributes(_login(gateway, "https"))
    assert "secure" in attributes and "httponly" in attributes


@pytest.mark.parametrize("proto", ["http", None])
def test_the_session_cookie_is_plain_when_the_browser_used_http(
    gateway: GatewayProcess, proto: str | None
) -> None:
    assert "secure" not in _attributes(_login(gateway, proto))


def test_a_client_that_is_no_trusted_proxy_cannot_ask_for_secure(gateway: GatewayProcess) -> None:
    # The same header from an address that is not in trusted_proxies is ignored.
    response = httpx.post(
        gateway.config.url("/.gateway/api/login"),
        json={"username": "admin", "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert "secure" not in _attributes(response)
