"""Plain words on the pages: the dashboard's refusals and failed logins and the audit log
as sentences, sessions by browser name, and "Log out everywhere else" on the account page."""

from __future__ import annotations

import html
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.support.admin import (
    USER_PASSWORD,
    AdminEnv,
    add_user,
    admin_gateway,
    form_token,
    logged_in,
)

ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminEnv]:
    with admin_gateway(tmp_path_factory.mktemp("plain-words")) as made:
        add_user(made.config, "anna")
        yield made


def _text(response: httpx.Response) -> str:
    return html.unescape(response.text)


def test_refusals_and_failed_logins_are_sentences(env: AdminEnv) -> None:
    wrong = httpx.post(
        env.config.url("/.gateway/api/login"),
        json={"username": "anna", "password": "not-her-password"},
        timeout=10,
    )
    assert wrong.status_code == 401
    refused = httpx.get(
        env.config.url("/api/v1/public/cemm"), headers={"Accept": "application/json"}, timeout=10
    )
    assert refused.status_code == 401
    with logged_in(env.admin_url("")) as admin:
        dashboard = _text(admin.get("/"))
        audit = _text(admin.get("/audit", params={"event": "login.failure"}))
    assert "Wrong password or code for anna from 127.0.0.1" in dashboard
    assert "1 request without a login" in dashboard
    assert "active session" in dashboard
    assert "Wrong password or code for anna from 127.0.0.1" in audit


@contextmanager
def _client(env: AdminEnv, agent: str) -> Iterator[httpx.Client]:
    """anna, logged in from a browser that says it is ``agent``."""
    with httpx.Client(
        base_url=env.config.url(""), timeout=15, headers={"User-Agent": agent}
    ) as client:
        answer = client.post(
            "/.gateway/api/login", json={"username": "anna", "password": USER_PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        yield client


def test_log_out_everywhere_else(env: AdminEnv) -> None:
    with _client(env, ANDROID_CHROME) as phone, _client(env, IPHONE_SAFARI) as other:
        page = phone.get("/.gateway/account")
        text = _text(page)
        assert "Chrome on Android" in text and "Safari on iOS" in text
        assert "Log out everywhere else" in text
        assert other.get("/.gateway/account").status_code == 200
        done = phone.post(
            "/.gateway/account/sessions/others", data={"csrf_token": form_token(page.text)}
        )
        assert done.status_code == 200
        assert "1 other session was logged out." in _text(done)
        assert "Safari on iOS" not in _text(done)
        assert "Log out everywhere else" not in _text(done)  # nothing else left to end
        assert other.get("/.gateway/account").status_code == 303  # to the login page
        assert phone.get("/.gateway/account").status_code == 200
    with logged_in(env.admin_url("")) as admin:
        audit = _text(admin.get("/audit", params={"event": "session.revoke"}))
    assert "anna ended a session of anna" in audit


def test_log_out_everywhere_else_needs_the_form_token(env: AdminEnv) -> None:
    with _client(env, ANDROID_CHROME) as phone:
        refused = phone.post("/.gateway/account/sessions/others", data={"csrf_token": "x"})
        assert refused.status_code == 403
