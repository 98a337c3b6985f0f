"""The Origin rule and the gateway's own names, over real sockets (docs/security.md,
"Authentication and sessions", rule 2 and 3): the seams a hostile review found where a
trusted network, a token or a matching ``Host`` skipped the same-origin check."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.support.gateway import (
    GatewayConfig,
    GatewayProcess,
    SimulatorThread,
    cli,
    token_in_force,
)

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayConfig, SimulatorThread]]:
    simulator = SimulatorThread()
    config = GatewayConfig(
        tmp_path_factory.mktemp("origin") / "gw",
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=(
            f'[auth]\ninitial_admin = "admin"\ninitial_admin_password = "{PASSWORD}"\n'
            'trusted_networks = ["127.0.0.0/8"]\n'
            'public_hostnames = ["cemm.example.org"]\n'
        ),
    )
    gateway = GatewayProcess(config)
    try:
        yield config, simulator
    finally:
        gateway.close()
        simulator.close()


def _reached(simulator: SimulatorThread, marker: str) -> bool:
    return any(r.query == marker for r in simulator.sim.requests)


def test_a_cross_site_post_from_a_trusted_network_is_refused(env) -> None:
    config, simulator = env
    answer = httpx.post(
        config.url("/_sim/echo?cross-site-post"),
        headers={"Origin": "http://evil.example", "Content-Type": "text/plain"},
        content=b"x",
        timeout=10,
    )
    assert answer.status_code == 403
    # The page says which setting adds a name the owner really uses.
    assert "public_url" in answer.text and "public_hostnames" in answer.text
    assert not _reached(simulator, "cross-site-post")
    # The same request from the gateway's own page, or from a script, goes through.
    own = httpx.post(
        config.url("/_sim/echo?own-post"),
        headers={"Origin": f"http://127.0.0.1:{config.http_port}"},
        content=b"x",
        timeout=10,
    )
    script = httpx.post(config.url("/_sim/echo?script-post"), content=b"x", timeout=10)
    assert (own.status_code, script.status_code) == (200, 200)
    assert _reached(simulator, "own-post") and _reached(simulator, "script-post")


def test_sec_fetch_site_refuses_without_an_origin(env) -> None:
    config, simulator = env
    answer = httpx.post(
        config.url("/_sim/echo?fetch-site"),
        headers={"Sec-Fetch-Site": "cross-site"},
        content=b"x",
        timeout=10,
    )
    assert answer.status_code == 403
    assert not _reached(simulator, "fetch-site")


def test_dns_rebinding_gets_no_trust_and_no_websocket(env) -> None:
    config, simulator = env
    # A page on evil.example whose name points at the gateway: Host and Origin agree.
    with socket.create_connection(("127.0.0.1", config.ws_port), timeout=10) as sock:
        sock.sendall(
            f"GET /ws?rebinding HTTP/1.1\r\nHost: evil.example:{config.ws_port}\r\n"
            f"Origin: http://evil.example:{config.http_port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        assert sock.recv(12) == b"HTTP/1.1 403"
    assert not _reached(simulator, "rebinding")
    # Reading without an Origin (a same-origin fetch on the rebound name): no trust either.
    read = httpx.get(
        config.url("/_sim/echo?rebound-read"),
        headers={"Host": f"evil.example:{config.http_port}"},
        timeout=10,
    )
    assert read.status_code == 401
    assert not _reached(simulator, "rebound-read")
    # Under one of the gateway's own names the trusted network needs no login.
    own = httpx.get(
        config.url("/_sim/echo?own-read"),
        headers={"Host": f"cemm.example.org:{config.http_port}"},
        timeout=10,
    )
    assert own.status_code == 200 and _reached(simulator, "own-read")


def test_an_api_token_from_a_foreign_page_may_not_change_anything(env) -> None:
    config, simulator = env
    made = cli("token", "add", "admin", "--name", "origin", config=config.path)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    token_in_force(config, token)  # another process made it: in force at the next reload
    headers = {"Authorization": f"Bearer {token}", "Host": "elsewhere.example"}
    foreign = httpx.post(
        config.url("/_sim/echo?token-foreign"),
        headers={**headers, "Origin": "http://evil.example"},
        content=b"x",
        timeout=10,
    )
    assert foreign.status_code == 403 and not _reached(simulator, "token-foreign")
    plain = httpx.post(config.url("/_sim/echo?token-plain"), headers=headers, timeout=10)
    assert plain.status_code == 200 and _reached(simulator, "token-plain")


def test_the_admin_app_uses_the_same_rule(env) -> None:
    config, _ = env
    login = httpx.post(
        config.url("/.gateway/api/login", port="admin"),
        json={"username": "admin", "password": PASSWORD},
        timeout=15,
    )
    assert login.status_code == 200
    cookies = {"cemm_session": login.cookies["cemm_session"]}
    headers = {"X-CSRF-Token": login.json()["csrf_token"]}
    body = {"network": "10.9.8.0/24", "label": "origin test"}
    # A page served by the admin app itself: own name, admin port.
    own_origin = f"http://127.0.0.1:{config.admin_port}"
    for origin, host, expected in [
        ("http://evil.example", None, 403),
        # DNS rebinding towards the admin port: the Host agrees with the Origin.
        (f"http://evil.example:{config.admin_port}", f"evil.example:{config.admin_port}", 403),
        (f"http://127.0.0.1:{config.http_port}", None, 403),  # the CEMM's page, another port
        (own_origin, None, 201),
    ]:
        answer = httpx.post(
            config.url("/api/allowlist", port="admin"),
            json=body,
            cookies=cookies,
            headers={**headers, "Origin": origin, **({"Host": host} if host else {})},
            timeout=10,
        )
        assert answer.status_code == expected, (origin, answer.status_code, answer.text[:200])
        if expected == 403:
            assert "public_url" in answer.text
