"""Behind a reverse proxy that terminates HTTPS (docs/exposing.md, third way): the gateway
speaks plain HTTP to the proxy, and what the browser sees must still be right - cookies
marked ``Secure``. Here the proxy is this test, connecting from 127.0.0.2, which is listed
in ``trusted_proxies``; the browser's address and scheme come in its forwarding headers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread

PASSWORD = "correct-horse-battery-staple"
BROWSER = "192.168.1.50"


@contextmanager
def _behind_proxy(directory: Path, *, tls: bool) -> Iterator[GatewayProcess]:
    """A gateway that trusts 127.0.0.2 as its reverse proxy, with or without its own TLS."""
    simulator = SimulatorThread()
    config = GatewayConfig(
        directory,
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=(
            '[allowlist]\ntrusted_proxies = ["127.0.0.2"]\n'
            + ("[tls]\nenabled = true\n" if tls else "")
            + f'[auth]\ninitial_admin = "admin"\ninitial_admin_password = "{PASSWORD}"\n'
            "[auth.bruteforce]\nnever_ban = []\n"
        ),
    )
    try:
        process = GatewayProcess(config, https=tls)
        try:
            yield process
        finally:
            process.close()
    finally:
        simulator.close()


def _client_from(source: str) -> httpx.Client:
    """A client whose connections come from ``source`` (127.0.0.2: the trusted proxy)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=10)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with _behind_proxy(tmp_path_factory.mktemp("behind-proxy"), tls=False) as process:
        yield process


def _login(gateway: GatewayProcess, proto: str | None) -> httpx.Response:
    headers = {"X-Forwarded-For": BROWSER}
    if proto is not None:
        headers["X-Forwarded-Proto"] = proto
    with _client_from("127.0.0.2") as proxy:
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


def test_the_cemm_page_gets_the_same_origin_socket_fix_up(gateway: GatewayProcess) -> None:
    # Behind a proxy that forwards one HTTPS port, the page's socket to port 8090 would
    # fail: with trusted_proxies set, [tls] single_port "auto" is on.
    cookie = _login(gateway, "https").cookies["cemm_session"]
    with _client_from("127.0.0.2") as proxy:
        page = proxy.get(
            gateway.config.url("/"),
            headers={
                "X-Forwarded-For": BROWSER,
                "X-Forwarded-Proto": "https",
                "Cookie": f"cemm_session={cookie}",
            },
        )
    assert page.status_code == 200
    assert '<script src="/.gateway/static/ws-fixup.js"' in page.text


@pytest.fixture(scope="module")
def tls_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with _behind_proxy(tmp_path_factory.mktemp("behind-proxy-tls"), tls=True) as process:
        yield process


@pytest.mark.parametrize(
    ("source", "proto", "redirected"),
    [
        ("127.0.0.2", "https", False),  # the proxy received HTTPS: no redirect loop
        ("127.0.0.2", "http", True),
        ("127.0.0.1", "https", True),  # not a trusted proxy: its header means nothing
    ],
)
def test_plain_http_from_a_proxy_that_received_https_is_not_redirected(
    tls_gateway: GatewayProcess, source: str, proto: str, redirected: bool
) -> None:
    with _client_from(source) as client:
        response = client.get(
            tls_gateway.config.url("/.gateway/login"),
            headers={"X-Forwarded-For": BROWSER, "X-Forwarded-Proto": proto},
        )
    assert (response.status_code == 308) is redirected, response.status_code
    if not redirected:
        assert response.status_code == 200
