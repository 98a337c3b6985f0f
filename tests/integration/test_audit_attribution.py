"""Every change made through the web app is attributed in the audit log to the client that
asked for it: its address and its user agent - the admin API, the admin pages' forms and
the account page alike."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.services import audit
from gateway.store import db
from tests.support.admin import (
    ADMIN,
    ADMIN_PASSWORD,
    AdminEnv,
    add_user,
    admin_gateway,
    form_token,
    logged_in,
)

AGENT = "Mozilla/5.0 (audit attribution test)"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminEnv]:
    with admin_gateway(tmp_path_factory.mktemp("audit-attribution")) as e:
        yield e


def _newest(data_dir: Path, event: str) -> audit.AuditEntry:
    conn = db.connect(data_dir / "gateway.db")
    try:
        (entry,) = audit.search(conn, event=event, limit=1)
    finally:
        conn.close()
    return entry


def test_an_admin_api_change_carries_the_user_agent(env: AdminEnv) -> None:
    with logged_in(env.admin_url("")) as admin:
        admin.headers["User-Agent"] = AGENT
        made = admin.post("/api/allowlist", json={"network": "198.51.100.7", "label": "ua"})
        assert made.status_code == 201, made.text
    entry = _newest(env.config.data_dir, "allowlist.add")
    assert (entry.actor, entry.client_address, entry.user_agent) == (ADMIN, "127.0.0.1", AGENT)


def test_the_account_pages_password_change_carries_the_user_agent(env: AdminEnv) -> None:
    add_user(env.config, "ursula")
    with httpx.Client(headers={"User-Agent": AGENT}, timeout=15) as browser:
        login = browser.post(
            env.config.url("/.gateway/api/login"),
            json={"username": "ursula", "password": "a-user-password-123"},
        )
        assert login.status_code == 200, login.text
        page = browser.get(env.config.url("/.gateway/account"))
        form = {
            "csrf_token": form_token(page.text),
            "current_password": "a-user-password-123",
            "new_password": "another long password 7",
            "new_password_again": "another long password 7",
        }
        action = re.search(r'action="(/\.gateway/account/password)"', page.text)
        assert action, "no password form on the account page"
        changed = browser.post(env.config.url(action.group(1)), data=form)
        assert changed.status_code in (200, 303), changed.text
    entry = _newest(env.config.data_dir, "user.password")
    assert (entry.actor, entry.user_agent) == ("ursula", AGENT)


def test_a_logout_carries_the_user_agent(env: AdminEnv) -> None:
    with httpx.Client(headers={"User-Agent": AGENT}, timeout=15) as browser:
        login = browser.post(
            env.config.url("/.gateway/api/login"),
            json={"username": ADMIN, "password": ADMIN_PASSWORD},
        )
        assert login.status_code == 200, login.text
        browser.post(
            env.config.url("/.gateway/logout"), data={"csrf_token": login.json()["csrf_token"]}
        )
    entry = _newest(env.config.data_dir, "logout")
    assert (entry.actor, entry.user_agent) == (ADMIN, AGENT)
