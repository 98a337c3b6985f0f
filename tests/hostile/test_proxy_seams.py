"""The proxy's seams, tried over real sockets as an attacker would (docs/security.md,
"Seams"): each test fails on a gateway that answers one of these questions in two places.

1. ``Upgrade: websocket,`` is a WebSocket: checked for its Origin, registered with its
   credential, closed when the login ends.
2. No other upgrade reaches the CEMM, and no 101 the gateway did not admit reaches a client.
3. The login redirect never invites or reads a body (``Expect: 100-continue``).
4. An absolute-form target never makes an answer name the admin app's internal address.
5. One-time link secrets never reach the log.
6. Client-sent "real IP", forwarding and override headers never reach the CEMM.
"""

from __future__ import annotations

import json
import re
import socket
import socketserver
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import TRUSTED_LOOPBACK
from tests.support.gateway import (
    GatewayConfig,
    GatewayProcess,
    SimulatorThread,
    changed_at,
    cli,
    token_in_force,
    wait_for,
)

PASSWORD = "correct-horse-battery-staple"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


@dataclass
class Env:
    config: GatewayConfig
    gateway: GatewayProcess
    simulator: SimulatorThread

    def login(self) -> tuple[str, str]:
        """A new session of the admin: (cookie value, CSRF token)."""
        response = httpx.post(
            self.config.url("/.gateway/api/login"),
            json={"username": "admin", "password": PASSWORD},
            timeout=15,
        )
        assert response.status_code == 200, response.text
        return response.cookies["cemm_session"], response.json()["csrf_token"]

    def logout(self, session: tuple[str, str]) -> None:
        response = httpx.post(
            self.config.url("/.gateway/logout"),
            data={"csrf_token": session[1]},
            cookies={"cemm_session": session[0]},
            timeout=10,
        )
        assert response.status_code in (200, 303), response.status_code

    @property
    def page_origin(self) -> str:
        return f"http://127.0.0.1:{self.config.http_port}"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    simulator = SimulatorThread()
    config = GatewayConfig(
        tmp_path_factory.mktemp("seams") / "gw",
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=(
            f'[auth]\ninitial_admin = "admin"\ninitial_admin_password = "{PASSWORD}"\n'
            "[auth.bruteforce]\nnever_ban = []\nfree_attempts = 1000\nban_after = 1000\n"
            "[log]\naccess = true\n"
        ),
    )
    gateway = GatewayProcess(config)
    try:
        yield Env(config, gateway, simulator)
    finally:
        gateway.close()
        simulator.close()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(10)
    return sock


def _read_head(sock: socket.socket) -> bytes:
    """Everything up to the end of the first answer's head (or until the gateway closes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _status(head: bytes) -> int | None:
    if not head.startswith(b"HTTP/1.1 "):
        return None
    return int(head[9:12])


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the peer closes the connection within ``seconds`` (frames before are read)."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def _upgrade_request(
    env: Env,
    *,
    upgrade: list[str],
    connection: list[str],
    cookie: str | None = None,
    origin: str | None = None,
    path: str = "/ws",
    extra: str = "",
) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{env.config.ws_port}"]
    lines += [f"Upgrade: {value}" for value in upgrade]
    lines += [f"Connection: {value}" for value in connection]
    lines += [f"Sec-WebSocket-Key: {KEY}", "Sec-WebSocket-Version: 13"]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    if cookie is not None:
        lines.append(f"Cookie: cemm_session={cookie}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def _handshake(sock: socket.socket, env: Env, **request: Any) -> int | None:
    """Send an opening handshake (:func:`_upgrade_request`) on ``sock``; the answer's status."""
    sock.sendall(_upgrade_request(env, **request))
    return _status(_read_head(sock))


# -- 1. every spelling of a WebSocket upgrade is a WebSocket ---------------------------------
def test_a_trailing_comma_websocket_is_checked_for_its_origin(env: Env) -> None:
    session = env.login()
    with _connect(env.config.ws_port) as sock:
        status = _handshake(
            sock,
            env,
            upgrade=["websocket,"],
            connection=["Upgrade"],
            cookie=session[0],
            origin="http://evil.example",
        )
        assert status == 403


def test_a_trailing_comma_websocket_closes_when_its_session_ends(env: Env) -> None:
    session = env.login()
    with _connect(env.config.ws_port) as sock:
        status = _handshake(
            sock,
            env,
            upgrade=["websocket,"],
            connection=["Upgrade"],
            cookie=session[0],
            origin=env.page_origin,
        )
        assert status == 101
        env.logout(session)
        assert _closed_within(sock, 10)
        closed = time.time()
    assert closed - changed_at(env.config.data_dir, "logout") < 2.0


# -- 2. no other upgrade, no unadmitted 101 --------------------------------------------------
def test_an_h2c_upgrade_with_a_read_only_token_is_refused_before_the_cemm(env: Env) -> None:
    made = cli("token", "add", "admin", "--name", "seams", "--read-only", config=env.config.path)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    token_in_force(env.config, token)  # refused as a known token, not as an unknown one
    marker = "/h2c-probe-read-only"
    for port in (env.config.http_port, env.config.ws_port):
        with _connect(port) as sock:
            sock.sendall(
                f"GET {marker} HTTP/1.1\r\nHost: cemm\r\nUpgrade: h2c\r\n"
                "Connection: Upgrade, HTTP2-Settings\r\n"
                "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
                f"Authorization: Bearer {token}\r\n\r\n".encode()
            )
            assert _status(_read_head(sock)) == 400
    assert not [r for r in env.simulator.sim.requests if r.path == marker]


@dataclass
class FakeDevice:
    """A device that answers ``101 Switching Protocols`` to every request under /probe,
    with the ``Upgrade`` its test chose, and records every byte that reaches it."""

    answer_upgrade: str = "h2c"
    received: list[bytes] = field(default_factory=list)
    server: socketserver.ThreadingTCPServer | None = None

    def start(self) -> int:
        device = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(10)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = sock.recv(65536)
                        if not chunk:
                            return
                        data += chunk
                    device.received.append(data)
                    if b" /probe" not in data.split(b"\r\n", 1)[0]:
                        body = json.dumps({"mac": "80:1F:12:47:06:B0", "time": 0}).encode()
                        sock.sendall(
                            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
                        )
                        return
                    sock.sendall(
                        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                        b"Upgrade: %s\r\n"
                        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
                        % device.answer_upgrade.encode()
                    )
                    while chunk := sock.recv(65536):
                        device.received.append(chunk)
                except OSError:
                    return

        socketserver.ThreadingTCPServer.daemon_threads = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return int(self.server.server_address[1])

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeDevice, GatewayConfig]]:
    device = FakeDevice()
    port = device.start()
    config = GatewayConfig(
        tmp_path_factory.mktemp("switch") / "gw",
        upstream_http_port=port,
        upstream_ws_port=port,
        extra=TRUSTED_LOOPBACK,
    )
    gateway = GatewayProcess(config)
    try:
        yield device, config
    finally:
        gateway.close()
        device.close()


def _audit(config: GatewayConfig, event: str) -> list[dict[str, object]]:
    with sqlite3.connect(config.data_dir / "gateway.db", timeout=10) as conn:
        rows = conn.execute("SELECT detail FROM audit_log WHERE event = ?", (event,)).fetchall()
    return [json.loads(row[0]) for row in rows]


def _tunnel_attempt(port: int, request: bytes) -> bytes:
    """Send ``request`` and then bytes a raw tunnel would carry; return all that came back."""
    with _connect(port) as sock:
        sock.sendall(request)
        answer = _read_head(sock)
        try:
            sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nTUNNELLED-BYTES")
        except OSError:
            pass
        assert _closed_within(sock, 10), "the gateway kept the connection open"
    return answer


def test_an_h2c_upgrade_never_reaches_the_device(fake) -> None:
    device, config = fake
    device.received.clear()
    answer = _tunnel_attempt(
        config.http_port,
        b"GET /probe-h2c HTTP/1.1\r\nHost: cemm\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
    )
    assert _status(answer) == 400
    assert not any(b"/probe-h2c" in data for data in device.received)


@pytest.mark.parametrize(
    ("request_upgrade", "answer_upgrade"),
    [
        (None, "websocket"),  # a 101 to a request that asked for no upgrade at all
        (None, "h2c"),
        ("websocket", "h2c"),  # an admitted WebSocket switched to something else
        ("websocket", "tcp"),
    ],
)
def test_a_switch_the_gateway_did_not_admit_never_reaches_the_client(
    fake, request_upgrade: str | None, answer_upgrade: str
) -> None:
    device, config = fake
    device.answer_upgrade = answer_upgrade
    device.received.clear()
    upgrade = (
        f"Upgrade: {request_upgrade}\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        if request_upgrade
        else ""
    )
    answer = _tunnel_attempt(
        config.ws_port, f"GET /probe-switch HTTP/1.1\r\nHost: cemm\r\n{upgrade}\r\n".encode()
    )
    assert b"101" not in answer.split(b"\r\n", 1)[0]
    assert any(b"/probe-switch" in data for data in device.received)  # it did answer 101
    assert not any(b"TUNNELLED-BYTES" in data for data in device.received)
    # Audited, with what was asked and what the device answered.
    wanted = {"requested": "websocket" if request_upgrade else "none", "answered": answer_upgrade}
    wait_for(
        lambda: any(
            {k: e.get(k) for k in wanted} == wanted
            for e in _audit(config, "proxy.unadmitted_switch")
        ),
        "the cut-off 101 is audited",
    )


# -- 3. the login redirect reads no body -----------------------------------------------------
def test_the_login_redirect_never_invites_a_body(env: Env) -> None:
    with _connect(env.config.http_port) as sock:
        sock.sendall(
            b"POST /instellingen HTTP/1.1\r\nHost: cemm\r\nSec-Fetch-Mode: navigate\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 1000000\r\nExpect: 100-continue\r\n\r\n"
        )
        head = _read_head(sock)
        assert _status(head) == 302, head[:200]
        assert b"/.gateway/login?next=%2Finstellingen" in head
        # The connection is closed at once: nothing of the announced body will be read.
        assert _closed_within(sock, 5)


# -- 4. absolute-form targets ----------------------------------------------------------------
@pytest.mark.parametrize(("port", "path"), [("admin", "/"), ("http", "/.gateway/login")])
def test_an_absolute_form_target_names_no_internal_address(env: Env, port: str, path: str) -> None:
    number = {"admin": env.config.admin_port, "http": env.config.http_port}[port]
    with _connect(number) as sock:
        sock.sendall(
            f"GET http://gw.example{path} HTTP/1.1\r\nHost: 127.0.0.1:{number}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert _status(answer) in (200, 302, 303, 307), answer[:300]
    # The only loopback port an answer may name is one the client itself used.
    text = answer.decode("latin-1")
    for found in {int(p) for p in _ports_after_loopback(text)}:
        assert found == number, f"the answer names 127.0.0.1:{found}:\n{text[:600]}"


def _ports_after_loopback(text: str) -> list[str]:
    return re.findall(r"127\.0\.0\.1(?::|%3A)(\d+)", text)


# -- 5. one-time link secrets stay out of the log --------------------------------------------
def test_peer_link_secrets_are_not_logged(env: Env) -> None:
    secrets = ["PEERLINKSECRETplain1234", "PEERLINKSECRETencoded56", "PEERLINKSECRETslash789"]
    paths = [
        f"/.gateway/peer/{secrets[0]}",
        f"/.gateway/%70eer/{secrets[1]}",
        f"/.gateway/peer%2F{secrets[2]}",
    ]
    for path in paths:
        httpx.get(env.config.url(path), timeout=10)
    log = env.gateway.log()
    assert "/.gateway/peer/[redacted]" in log  # the access log did write these requests
    for secret in secrets:
        assert secret not in log


# -- 6. client-sent headers ------------------------------------------------------------------
SPOOFED = {
    "X-Real-IP": "203.0.113.9",
    "X-Client-IP": "203.0.113.9",
    "True-Client-IP": "203.0.113.9",
    "CF-Connecting-IP": "203.0.113.9",
    "X-Cluster-Client-IP": "203.0.113.9",
    "X-Original-URL": "/admin",
    "X-Rewrite-URL": "/admin",
    "X-HTTP-Method-Override": "DELETE",
    "X-HTTP-Method": "DELETE",
    "X-Method-Override": "DELETE",
    "X-Forwarded-Port": "1",
    "Forwarded": "for=203.0.113.9",
}


def test_client_sent_real_ip_and_override_headers_never_reach_the_cemm(env: Env) -> None:
    session = env.login()
    marker = "/spoofed-headers-probe"
    response = httpx.get(
        env.config.url(marker),
        headers=SPOOFED,
        cookies={"cemm_session": session[0]},
        timeout=10,
    )
    assert response.status_code < 500
    seen = [r for r in env.simulator.sim.requests if r.path == marker]
    assert seen, "the request did not reach the CEMM"
    names = {name for name, _ in seen[-1].headers}
    assert not names & {name.lower() for name in SPOOFED}
    assert seen[-1].header("x-forwarded-for") == "127.0.0.1"


# -- the property: every Upgrade/Connection spelling -----------------------------------------
def _reference_kind(upgrade: list[str]) -> str:
    names = [part.strip().lower() for line in upgrade for part in line.split(",")]
    names = [name for name in names if name]
    if not names:
        return "none"
    return "websocket" if set(names) == {"websocket"} else "other"


_UPGRADE = st.lists(
    st.sampled_from(
        [
            *("websocket", "WebSocket", "websocket,", ",websocket", " websocket "),
            *("websocket, h2c", "h2c", "", "websocket/13", "TLS/1.2"),
        ]
    ),
    max_size=2,
)
_CONNECTION = st.lists(
    st.sampled_from(["Upgrade", "upgrade", "keep-alive, Upgrade", "Upgrade,", "close", ""]),
    max_size=2,
)


@settings(
    derandomize=True,
    max_examples=24,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(upgrade=_UPGRADE, connection=_CONNECTION)
@example(upgrade=["websocket,"], connection=["Upgrade"])
@example(upgrade=["h2c"], connection=["Upgrade"])
def test_every_upgrade_spelling_is_refused_or_a_websocket_that_ends_with_its_session(
    env: Env, upgrade: list[str], connection: list[str]
) -> None:
    kind = _reference_kind(upgrade)
    session = env.login()
    with _connect(env.config.ws_port) as sock:
        status = _handshake(
            sock,
            env,
            upgrade=upgrade,
            connection=connection,
            cookie=session[0],
            origin=env.page_origin,
        )
        if kind == "websocket":
            assert status == 101
            env.logout(session)
            assert _closed_within(sock, 10)
            closed = time.time()
            assert closed - changed_at(env.config.data_dir, "logout") < 2.0
        else:
            assert status != 101
            assert status is not None and 400 <= status < 500
            if kind == "other":
                assert status == 400
            env.logout(session)


def test_the_cemm_sees_only_the_upgrade_the_gateway_decided(env: Env) -> None:
    session = env.login()
    with _connect(env.config.ws_port) as sock:
        status = _handshake(
            sock,
            env,
            upgrade=[" WebSocket,", "websocket"],
            connection=["keep-alive, upgrade"],
            cookie=session[0],
            origin=env.page_origin,
            path="/ws?decided",
        )
        assert status == 101
    seen = [r for r in env.simulator.sim.requests if r.query == "decided"]
    assert seen and seen[-1].websocket
    upgrades = [value for name, value in seen[-1].headers if name == "upgrade"]
    assert upgrades == ["websocket"]
    env.logout(session)
