"""Who reaches the admin app at all: a ``user`` gets 403 on every path of it (every
operation in the OpenAPI document, every page, files and paths that do not exist), and
the admin listener disconnects addresses outside ``admin_networks`` without an answer."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.admin import (
    USER_PASSWORD,
    AdminEnv,
    add_user,
    admin_gateway,
    logged_in,
)
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread

# Every page of the admin app, and things that are not pages (they must not tell a
# non-admin anything either).
PAGES = [
    "/",
    "/allowlist",
    "/users",
    "/users/admin",
    "/tokens",
    "/guests",
    "/sessions",
    "/bans",
    "/audit",
    "/static/admin.css",
    "/static/admin.js",
    "/no-such-page",
    "/api/no-such-operation",
    "/openapi.json",
]
PATH_VALUES = {
    "name": "admin",
    "entry_id": "1",
    "ban_id": "1",
    "token_id": "abcdefgh",
    "session_id": "abcdef",
    "link_id": "1",
    "passkey_id": "1",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminEnv]:
    with admin_gateway(tmp_path_factory.mktemp("admin-access")) as e:
        add_user(e.config, "ursula")
        yield e


def _operations(env: AdminEnv) -> list[tuple[str, str]]:
    with logged_in(env.admin_url("")) as admin:
        document = admin.get("/openapi.json").json()
    operations = [
        (method.upper(), re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path))
        for path, methods in document["paths"].items()
        for method in methods
    ]
    assert len(operations) >= 20, operations
    return operations


def test_a_user_gets_403_on_every_operation_and_page(env: AdminEnv) -> None:
    operations = _operations(env)
    with logged_in(env.admin_url(""), "ursula", USER_PASSWORD) as user:
        # The user's own, valid CSRF token is sent: the refusal is about the role.
        for method, path in operations:
            response = user.request(method, path, json={})
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["error"] == "forbidden"
        for path in PAGES:
            for method in ("GET", "POST"):
                response = user.request(method, path, data={"action": "remove"})
                assert response.status_code == 403, (method, path)
                assert "admin" in response.text
        # ... and the same with the user's API token instead of the session.
        token = _user_token(env)
    with httpx.Client(base_url=env.admin_url(""), timeout=10) as script:
        script.headers["Authorization"] = f"Bearer {token}"
        for method, path in operations:
            assert script.request(method, path, json={}).status_code == 403, (method, path)
    # Nothing changed: the admin is still there, with the loopback entry.
    with logged_in(env.admin_url("")) as admin:
        assert [u["name"] for u in admin.get("/api/users").json()] == ["admin", "ursula"]
        assert len(admin.get("/api/allowlist").json()["entries"]) == 1


def _user_token(env: AdminEnv) -> str:
    with logged_in(env.admin_url("")) as admin:
        created = admin.post("/api/tokens", json={"user": "ursula", "name": "probe"})
        assert created.status_code == 201
        return str(created.json()["token"])


def test_the_user_is_told_why_on_a_page(env: AdminEnv) -> None:
    with logged_in(env.admin_url(""), "ursula", USER_PASSWORD) as user:
        page = user.get("/allowlist")
    assert page.status_code == 403
    assert "text/html" in page.headers["content-type"]
    assert (
        "&#39;ursula&#39; is not an admin" in page.text or "'ursula' is not an admin" in page.text
    )
    assert 'href="/.gateway/account"' in page.text


class _ReadyOnWebPort(GatewayProcess):
    """The admin port refuses the test's own address here: wait on the web port."""

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.config.url("/.gateway/login"), timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gateway did not become ready:\n{self.log()}")


def _raw_exchange(port: int) -> bytes:
    """What the admin port answers a plain request: nothing, the connection just closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        try:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            received = b""
            while chunk := connection.recv(4096):
                received += chunk
        except (ConnectionResetError, BrokenPipeError):
            return b""
        return received


def test_the_admin_listener_refuses_addresses_outside_admin_networks(tmp_path: Path) -> None:
    simulator = SimulatorThread()
    config = GatewayConfig(
        tmp_path / "gw",
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra='[allowlist]\nadmin_networks = ["10.0.0.0/8"]\n',
    )
    gateway = _ReadyOnWebPort(config)
    try:
        assert _raw_exchange(config.admin_port) == b""
        with pytest.raises(httpx.HTTPError):
            httpx.get(config.url("/healthz", port="admin"), timeout=5)
        with pytest.raises(httpx.HTTPError):
            httpx.get(config.url("/", port="admin"), timeout=5)
        # The web port, whose allowlist admits loopback, still answers.
        assert httpx.get(config.url("/.gateway/login"), timeout=5).status_code == 200
        assert "admin networks: 10.0.0.0/8" in gateway.log()
    finally:
        gateway.close()
        simulator.close()
