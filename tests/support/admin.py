"""A gateway for the admin app's tests, and HTTP clients logged in to it.

:func:`admin_gateway` starts the simulator and a gateway whose web and ws ports admit
loopback only through an allowlist *entry* (``default_networks`` is a private range), so
the self lock-out rule has something to protect; the admin port admits loopback through
``admin_networks`` as usual.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread, cli

ADMIN = "admin"
ADMIN_PASSWORD = "correct-horse-battery-staple"
USER_PASSWORD = "a-user-password-123"
LOOPBACK_ENTRY = "127.0.0.0/8"


def auth_config(
    *, admin: str = ADMIN, ban_after: int = 1000, default_networks: str = '["10.0.0.0/8"]'
) -> str:
    return (
        f"[allowlist]\ndefault_networks = {default_networks}\n"
        f'[auth]\ninitial_admin = "{admin}"\ninitial_admin_password = "{ADMIN_PASSWORD}"\n'
        "[auth.bruteforce]\n"
        'never_ban = ["127.0.0.0/8", "::1/128"]\n'
        f"free_attempts = 1000\nmax_delay = 0\nban_after = {ban_after}\n"
    )


@dataclass
class AdminEnv:
    config: GatewayConfig
    gateway: GatewayProcess
    simulator: SimulatorThread

    def admin_url(self, path: str = "/") -> str:
        return self.config.url(path, port="admin")


@contextmanager
def admin_gateway(directory: Path, *, extra: str | None = None) -> Iterator[AdminEnv]:
    """Simulator + gateway; the simulator's page dials the gateway's ws port."""
    config = GatewayConfig(
        directory, upstream_http_port=0, upstream_ws_port=0, extra=extra or auth_config()
    )
    simulator = SimulatorThread(page_ws_port=config.ws_port)
    config.upstream_http_port, config.upstream_ws_port = simulator.http_port, simulator.ws_port
    config.write()
    gateway: GatewayProcess | None = None
    try:
        result = cli("allow", "add", LOOPBACK_ENTRY, "--label", "loopback", config=config.path)
        assert result.returncode == 0, result.stderr
        gateway = GatewayProcess(config)
        yield AdminEnv(config, gateway, simulator)
    finally:
        if gateway is not None:
            gateway.close()
        simulator.close()


def add_user(config: GatewayConfig, name: str, *, role: str = "user") -> None:
    result = cli(
        "user",
        "add",
        name,
        "--role",
        role,
        "--password-stdin",
        config=config.path,
        input=USER_PASSWORD + "\n",
    )
    assert result.returncode == 0, result.stderr


@contextmanager
def logged_in(
    base_url: str, name: str = ADMIN, password: str = ADMIN_PASSWORD, **extra: str
) -> Iterator[httpx.Client]:
    """A client with the session cookie and the session's CSRF token header."""
    with httpx.Client(base_url=base_url, timeout=15) as client:
        response = client.post(
            "/.gateway/api/login", json={"username": name, "password": password, **extra}
        )
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client


def form_token(page: str) -> str:
    """The CSRF token of the first form in an HTML page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no form with a CSRF token on the page"
    return found.group(1)
