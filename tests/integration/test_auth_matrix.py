"""The login conformance matrix: every way in, every kind of credential.

{web port, ws port} x {HTTP request, WebSocket upgrade} x {no cookie, garbage cookie,
expired, revoked, valid, valid with a foreign Origin} -> the expected answer, and the
simulated CEMM never sees a request that was refused.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support.gateway import (
    GatewayConfig,
    GatewayProcess,
    SimulatorThread,
    cli,
    wait_for,
)

ADMIN_PASSWORD = "correct-horse-battery-staple"
AUTH = f"""[auth]
initial_admin = "admin"
initial_admin_password = "{ADMIN_PASSWORD}"
[auth.bruteforce]
never_ban = []
free_attempts = 1000
"""
FOREIGN_ORIGIN = "http://evil.example"


def login(
    config: GatewayConfig, username: str = "admin", password: str = ADMIN_PASSWORD, **extra: str
) -> str:
    """The session token a JSON login answers with."""
    response = httpx.post(
        config.url("/.gateway/api/login"),
        json={"username": username, "password": password, **extra},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.cookies["cemm_session"]


@dataclass
class Credentials:
    valid: str
    expired: str
    revoked: str


def _session_id(config: GatewayConfig, token: str) -> str:
    with sqlite3.connect(config.data_dir / "gateway.db") as db:
        return db.execute(
            "SELECT id FROM session WHERE token_hash = ?",
            (hashlib.sha256(token.encode()).hexdigest(),),
        ).fetchone()[0]


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayConfig, SimulatorThread, Credentials]]:
    simulator = SimulatorThread()
    config = GatewayConfig(
        tmp_path_factory.mktemp("matrix"),
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=AUTH,
    )
    gateway = GatewayProcess(config)
    try:
        credentials = Credentials(login(config), login(config), login(config))
        # Expire one session as if its lifetime had passed (a direct write, like time
        # passing), and revoke another the way an admin does; the running gateway picks
        # both up from the database.
        with sqlite3.connect(config.data_dir / "gateway.db") as db:
            db.execute(
                "UPDATE session SET expires_at = 1 WHERE id = ?",
                (_session_id(config, credentials.expired),),
            )
        revoked = _session_id(config, credentials.revoked)
        assert cli("session", "revoke", revoked, config=config.path).returncode == 0
        active = json.loads(cli("session", "list", "--json", config=config.path).stdout)
        assert [s["id"] for s in active] == [_session_id(config, credentials.valid)]

        def refused(token: str) -> bool:
            answer = httpx.get(config.url("/_sim/headers"), cookies={"cemm_session": token})
            return answer.status_code == 401

        # The running gateway notices both on its next database poll.
        wait_for(lambda: refused(credentials.expired), "the expired session is refused")
        wait_for(lambda: refused(credentials.revoked), "the revoked session is refused")
        yield config, simulator, credentials
    finally:
        gateway.close()
        simulator.close()


CASES = ["none", "garbage", "expired", "revoked", "valid", "foreign_origin"]
# The web port gets a state-changing POST; the ws port, whose device answers plain HTTP with
# 426, a GET. A GET with a foreign Origin is admitted by design: browsers do not send the
# SameSite=Lax cookie on cross-site subresource requests, and CORS keeps the answer from a
# foreign page. A cross-site POST that still carries the cookie is refused.
EXPECTED_HTTP = {
    ("http", "none"): 401,
    ("http", "garbage"): 401,
    ("http", "expired"): 401,
    ("http", "revoked"): 401,
    ("http", "valid"): 200,
    ("http", "foreign_origin"): 403,
    ("ws", "none"): 401,
    ("ws", "garbage"): 401,
    ("ws", "expired"): 401,
    ("ws", "revoked"): 401,
    ("ws", "valid"): 426,
    ("ws", "foreign_origin"): 426,
}
EXPECTED_WS = {
    "none": 401,
    "garbage": 401,
    "expired": 401,
    "revoked": 401,
    "valid": 101,
    "foreign_origin": 403,
}


def _cookie(credentials: Credentials, case: str) -> str | None:
    return {
        "none": None,
        "garbage": "not-a-session-" + "x" * 30,
        "expired": credentials.expired,
        "revoked": credentials.revoked,
        "valid": credentials.valid,
        "foreign_origin": credentials.valid,
    }[case]


def _origin(config: GatewayConfig, case: str) -> str:
    return FOREIGN_ORIGIN if case == "foreign_origin" else f"http://127.0.0.1:{config.http_port}"


@pytest.mark.parametrize("port", ["http", "ws"])
@pytest.mark.parametrize("case", CASES)
def test_http_request(env, port: str, case: str) -> None:
    config, simulator, credentials = env
    marker = f"marker={uuid.uuid4().hex}"
    cookie = _cookie(credentials, case)
    headers = {"Origin": _origin(config, case), "Accept": "application/json"}
    if cookie:
        headers["Cookie"] = f"cemm_session={cookie}"
    if port == "http":
        url = config.url(f"/_sim/echo?{marker}")
        response = httpx.post(url, headers=headers, content=b"{}", timeout=5)
    else:
        response = httpx.get(config.url(f"/ws?{marker}", port="ws"), headers=headers, timeout=5)
    expected = EXPECTED_HTTP[port, case]
    assert response.status_code == expected, response.text[:200]
    reached = any(r.query == marker for r in simulator.sim.requests)
    assert reached == (expected not in (401, 403))
    if port == "http" and response.status_code == 200:
        # The CEMM never sees the gateway's session cookie.
        assert "cemm_session" not in response.json()["headers"].get("cookie", "")


@pytest.mark.parametrize("port", ["http", "ws"])
@pytest.mark.parametrize("case", CASES)
def test_websocket_upgrade(env, port: str, case: str) -> None:
    config, simulator, credentials = env
    marker = uuid.uuid4().hex
    cookie = _cookie(credentials, case)
    headers = {"Cookie": f"cemm_session={cookie}"} if cookie else {}
    url = config.ws_url(f"/ws?marker={marker}", port=port)
    if EXPECTED_WS[case] == 101:
        with connect(
            url, origin=_origin(config, case), additional_headers=headers, open_timeout=5
        ) as ws:
            assert '"reading"' in ws.recv(timeout=3)
    else:
        with pytest.raises(InvalidStatus) as refused:
            connect(url, origin=_origin(config, case), additional_headers=headers, open_timeout=5)
        assert refused.value.response.status_code == EXPECTED_WS[case]
    reached = any(r.query == f"marker={marker}" for r in simulator.sim.requests)
    assert reached == (EXPECTED_WS[case] == 101)


def test_navigation_without_login_goes_to_the_login_page(env) -> None:
    config, _, _ = env
    response = httpx.get(
        config.url("/instellingen/systeem?tab=1"),
        headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate"},
        timeout=5,
    )
    assert response.status_code == 302
    assert (
        response.headers["location"] == "/.gateway/login?next=%2Finstellingen%2Fsysteem%3Ftab%3D1"
    )
    page = httpx.get(config.url(response.headers["location"]), timeout=5)
    assert page.status_code == 200
    assert 'name="password"' in page.text


def test_websocket_without_origin_is_refused_for_cookie_sessions(env) -> None:
    config, _, credentials = env
    with pytest.raises(InvalidStatus) as refused:
        connect(
            config.ws_url("/ws"),
            additional_headers={"Cookie": f"cemm_session={credentials.valid}"},
            open_timeout=5,
        )
    assert refused.value.response.status_code == 403
