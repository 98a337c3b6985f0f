"""The admin pages without a browser's script: the form CSRF token, the confirmation page
every destructive action answers first, the self lock-out page, one-time secrets, and
clear empty states and errors."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support.admin import (
    ADMIN,
    ADMIN_PASSWORD,
    LOOPBACK_ENTRY,
    AdminEnv,
    admin_gateway,
    form_token,
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminEnv]:
    with admin_gateway(tmp_path_factory.mktemp("admin-pages")) as e:
        yield e


@pytest.fixture
def browser(env: AdminEnv) -> Iterator[httpx.Client]:
    """A client that logs in with the form, as a browser without script would."""
    with httpx.Client(base_url=env.admin_url(""), timeout=15) as client:
        page = client.get("/allowlist", follow_redirects=True)
        assert page.url.path == "/.gateway/login"
        form = {
            "username": ADMIN,
            "password": ADMIN_PASSWORD,
            "next": "/allowlist",
            "csrf_token": form_token(page.text),
        }
        response = client.post("/.gateway/login", data=form)
        assert response.status_code == 303 and response.headers["location"] == "/allowlist"
        yield client


def _hidden_fields(page: str) -> dict[str, str]:
    form = re.search(r'<form method="post"[^>]*class="form confirm-form">(.*?)</form>', page, re.S)
    assert form, "no confirmation form"
    return {
        name: html.unescape(value)
        for name, value in re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(1))
    }


def _entry_id(page: str, network: str) -> str:
    row = re.search(rf'<tr data-network="{re.escape(network)}".*?</tr>', page, re.S)
    assert row, f"{network} not listed"
    found = re.search(r'name="entry_id" value="(\d+)"', row.group(0))
    assert found
    return found.group(1)


def test_a_form_without_its_csrf_token_changes_nothing(browser: httpx.Client) -> None:
    response = browser.post("/allowlist", data={"action": "add", "network": "192.0.2.0/24"})
    assert response.status_code == 403
    assert "The form expired" in response.text
    assert "192.0.2.0/24" not in browser.get("/allowlist").text


def test_add_then_remove_with_a_confirmation_page(browser: httpx.Client) -> None:
    page = browser.get("/allowlist").text
    token = form_token(page)
    added = browser.post(
        "/allowlist",
        data={
            "csrf_token": token,
            "action": "add",
            "network": "198.51.100.0/24",
            "label": "office",
            "expires": "7d",
        },
    )
    assert added.status_code == 200
    assert "Added 198.51.100.0/24." in added.text
    entry_id = _entry_id(added.text, "198.51.100.0/24")
    again = browser.post(
        "/allowlist",
        data={
            "csrf_token": token,
            "action": "add",
            "network": "198.51.100.0/24",
            "label": "office 2",
            "expires": "7d",
        },
    )
    assert "Updated the label and expiry of 198.51.100.0/24." in again.text
    assert _entry_id(again.text, "198.51.100.0/24") == entry_id

    remove = {"csrf_token": token, "action": "remove", "entry_id": entry_id, "confirmed": ""}
    asked = browser.post("/allowlist", data={**remove, "network": "198.51.100.0/24"})
    assert asked.status_code == 200
    assert "Remove this entry?" in asked.text
    assert 'data-confirm="' not in asked.text  # the page itself is the question
    assert "198.51.100.0/24" in _entry_ids(browser)
    confirmed = _hidden_fields(asked.text)
    assert confirmed["confirmed"] == "1" and confirmed["entry_id"] == entry_id
    done = browser.post("/allowlist", data=confirmed)
    assert "Removed 198.51.100.0/24." in done.text
    assert "198.51.100.0/24" not in _entry_ids(browser)


def _entry_ids(browser: httpx.Client) -> list[str]:
    return re.findall(r'<tr data-network="([^"]+)"', browser.get("/allowlist").text)


def test_add_my_current_address_and_invalid_input(browser: httpx.Client) -> None:
    token = form_token(browser.get("/allowlist").text)
    mine = browser.post("/allowlist", data={"csrf_token": token, "action": "add_mine"})
    assert "Added 127.0.0.1/32." in mine.text
    assert re.search(r'data-network="127\.0\.0\.1/32".*?my address', mine.text, re.S)
    bad = browser.post(
        "/allowlist", data={"csrf_token": token, "action": "add", "network": "10.1", "label": "x"}
    )
    assert bad.status_code == 400
    assert "is not an IPv4 or IPv6 network" in html.unescape(bad.text)
    assert 'value="10.1"' in bad.text  # what was typed stays in the form
    # 127.0.0.1/32 is not the only entry admitting loopback: no lock-out warning.
    remove = {
        "csrf_token": token,
        "action": "remove",
        "entry_id": _entry_id(mine.text, "127.0.0.1/32"),
        "confirmed": "1",
    }
    assert "Removed 127.0.0.1/32." in browser.post("/allowlist", data=remove).text


def test_the_self_lockout_page(browser: httpx.Client) -> None:
    page = browser.get("/allowlist").text
    remove = {
        "csrf_token": form_token(page),
        "action": "remove",
        "entry_id": _entry_id(page, LOOPBACK_ENTRY),
        "network": LOOPBACK_ENTRY,
        "confirmed": "1",
    }
    refused = browser.post("/allowlist", data=remove)
    assert refused.status_code == 409
    assert "This would lock you out" in refused.text
    assert "127.0.0.1 could no longer reach" in refused.text
    fields = _hidden_fields(refused.text)
    assert fields["confirm_lockout"] == "1"
    assert LOOPBACK_ENTRY in _entry_ids(browser)


def test_a_generated_password_is_shown_once(env: AdminEnv, browser: httpx.Client) -> None:
    token = form_token(browser.get("/users").text)
    added = browser.post(
        "/users", data={"csrf_token": token, "action": "add", "name": "june", "role": "user"}
    )
    assert "Added user june." in added.text
    secret = re.search(r"<code class=\"secret\" data-secret>([^<]+)</code>", added.text)
    assert secret
    login = httpx.post(
        env.config.url("/.gateway/api/login"),
        json={"username": "june", "password": html.unescape(secret.group(1))},
        timeout=10,
    )
    assert login.status_code == 200
    assert secret.group(1) not in browser.get("/users").text
    assert secret.group(1) not in browser.get("/users/june").text

    duplicate = browser.post(
        "/users", data={"csrf_token": token, "action": "add", "name": "June", "role": "user"}
    )
    assert duplicate.status_code == 409
    assert "there is already a user" in html.unescape(duplicate.text)


def test_user_actions_ask_first_and_say_what_happened(browser: httpx.Client) -> None:
    token = form_token(browser.get("/users").text)
    added = browser.post("/users", data={"csrf_token": token, "action": "add", "name": "kim"})
    assert "Added user kim." in added.text, added.text
    asked = browser.post("/users/kim", data={"csrf_token": token, "action": "disable"})
    assert "Disable kim?" in asked.text
    done = browser.post("/users/kim", data=_hidden_fields(asked.text))
    assert "kim is disabled." in done.text
    own = browser.post(
        f"/users/{ADMIN}",
        data={"csrf_token": token, "action": "remove", "confirmed": "1"},
    )
    assert own.status_code == 409
    assert "you cannot remove your own account" in html.unescape(own.text)
    # Enabling and promoting are not destructive: no question.
    assert (
        "kim is enabled."
        in browser.post("/users/kim", data={"csrf_token": token, "action": "enable"}).text
    )
    assert (
        "kim is now an admin."
        in browser.post(
            "/users/kim", data={"csrf_token": token, "action": "role", "role": "admin"}
        ).text
    )
    demote = browser.post(
        "/users/kim", data={"csrf_token": token, "action": "role", "role": "user"}
    )
    assert "Change kim&#39;s role?" in demote.text or "Change kim's role?" in demote.text
    gone = browser.post(
        "/users/kim", data={"csrf_token": token, "action": "remove", "confirmed": "1"}
    )
    assert "Removed kim." in gone.text
    assert browser.get("/users/kim").status_code == 404


def test_empty_states(browser: httpx.Client) -> None:
    assert "No active bans." in browser.get("/bans").text
    assert "No API tokens." in browser.get("/tokens").text
    nothing = browser.get("/audit", params={"user": "nobody-at-all"})
    assert "Nothing matches this filter." in nothing.text
    bad_time = browser.get("/audit", params={"since": "yesterday"})
    assert bad_time.status_code == 400
    assert "is not a date and time" in html.unescape(bad_time.text)
    missing = browser.get("/no-such-page")
    assert missing.status_code == 404 and "There is no such page." in missing.text
