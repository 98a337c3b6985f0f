"""Passkey ceremonies over HTTP, as the portal's script runs them, with a software
authenticator (:mod:`tests.support.authenticator`): make a passkey on the account page,
log in with it alone or as the second step after a password. The gateway must have
``localhost`` among its own names (``[auth] public_hostnames``): passkeys need a host name.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.support.authenticator import SoftAuthenticator
from tests.support.gateway import GatewayConfig


def url(config: GatewayConfig, path: str) -> str:
    return config.url(path, host="localhost")


def origin(config: GatewayConfig) -> str:
    return f"http://localhost:{config.http_port}"


def _find(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found, f"{pattern} not on the page"
    return found.group(1)


def enrol(
    config: GatewayConfig, name: str, password: str, key: SoftAuthenticator, label: str = "phone"
) -> None:
    """Make a passkey on ``key`` for the account (no second factor yet) on its account page,
    in a session that ends afterwards."""
    with httpx.Client(timeout=15) as client:
        login = client.post(
            url(config, "/.gateway/api/login"), json={"username": name, "password": password}
        )
        assert login.status_code == 200, login.text
        csrf = login.json()["csrf_token"]
        options = client.post(
            url(config, "/.gateway/account/passkeys/options"), json={"csrf_token": csrf}
        )
        assert options.status_code == 200, options.text
        made = client.post(
            url(config, "/.gateway/account/passkeys"),
            json={
                "csrf_token": csrf,
                "name": label,
                "credential": key.create(options.json()["options"], origin(config)),
            },
        )
        assert made.status_code == 200, made.text
        # Log out: only the logins made with the passkey stay.
        logout = client.post(url(config, "/.gateway/logout"), data={"csrf_token": csrf})
        assert logout.status_code == 200, logout.text


def passkey_step(
    client: httpx.Client,
    config: GatewayConfig,
    key: SoftAuthenticator,
    *,
    csrf: str,
    challenge: str = "",
    answer: dict[str, Any] | None = None,
    **signing: Any,
) -> tuple[httpx.Response, dict[str, Any]]:
    """Ask for options, sign, send: the gateway's answer and the signed answer."""
    start = client.post(
        url(config, "/.gateway/login/passkey/options"),
        json={"csrf_token": csrf, "challenge": challenge},
    )
    assert start.status_code == 200, start.text
    answer = answer or key.get(start.json()["options"], origin(config), **signing)
    done = client.post(
        url(config, "/.gateway/login/passkey"),
        json={
            "csrf_token": csrf,
            "ticket": start.json()["ticket"],
            "credential": answer,
            "next": "/app",
            "challenge": challenge,
        },
    )
    return done, answer


def login_csrf(client: httpx.Client, config: GatewayConfig) -> str:
    page = client.get(url(config, "/.gateway/login"))
    assert page.status_code == 200, page.status_code
    return _find(r'name="csrf_token" value="([^"]+)"', page.text)


def passkey_login(config: GatewayConfig, key: SoftAuthenticator) -> str:
    """The session token of a login with the passkey alone."""
    with httpx.Client(timeout=15) as client:
        done, _ = passkey_step(client, config, key, csrf=login_csrf(client, config))
        assert done.status_code == 200, done.text
        return str(client.cookies["cemm_session"])


def password_and_passkey_login(
    config: GatewayConfig, name: str, password: str, key: SoftAuthenticator
) -> str:
    """The session token of a login with the password, then the passkey."""
    with httpx.Client(timeout=15) as client:
        step = client.post(
            url(config, "/.gateway/login"),
            data={
                "username": name,
                "password": password,
                "csrf_token": login_csrf(client, config),
                "next": "/",
            },
        )
        assert step.status_code == 200, step.text
        done, _ = passkey_step(
            client,
            config,
            key,
            csrf=_find(r'data-csrf="([^"]+)"', step.text),
            challenge=_find(r'data-challenge="([^"]+)"', step.text),
        )
        assert done.status_code == 200, done.text
        return str(client.cookies["cemm_session"])
