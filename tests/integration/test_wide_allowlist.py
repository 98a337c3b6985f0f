"""A wide allowlist entry (0.0.0.0/0, ::/0, a public network wider than /16) is accepted
only after a confirmation that says what it means, at every edge: the admin page (a confirm
step), the JSON API (``confirm_wide``, else 409 ``wide_network``) and the CLI (``--yes``).
One gateway for the module."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.admin import AdminEnv, admin_gateway, form_token, logged_in
from tests.support.gateway import cli


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminEnv]:
    with admin_gateway(tmp_path_factory.mktemp("wide-allowlist")) as e:
        yield e


@pytest.fixture
def admin(env: AdminEnv) -> Iterator[httpx.Client]:
    with logged_in(env.admin_url("")) as client:
        yield client


def _networks(admin: httpx.Client) -> set[str]:
    return {entry["network"] for entry in admin.get("/api/allowlist").json()["entries"]}


def test_api_refuses_without_confirm_wide(admin: httpx.Client) -> None:
    refused = admin.post("/api/allowlist", json={"network": "0.0.0.0/0"})
    assert refused.status_code == 409
    body = refused.json()
    assert body["error"] == "wide_network" and body["network"] == "0.0.0.0/0"
    assert body["field"] == "network"
    assert "every IPv4 address: anyone on the internet" in body["detail"]
    assert "confirm_wide" in body["detail"]
    assert "0.0.0.0/0" not in _networks(admin)

    added = admin.post("/api/allowlist", json={"network": "0.0.0.0/0", "confirm_wide": True})
    assert added.status_code == 201, added.text
    assert "0.0.0.0/0" in _networks(admin)
    entries = admin.get("/api/allowlist").json()["entries"]
    entry_id = next(e["id"] for e in entries if e["network"] == "0.0.0.0/0")
    assert admin.delete(f"/api/allowlist/{entry_id}").status_code == 204
    # Narrow and private networks ask nothing.
    assert admin.post("/api/allowlist", json={"network": "10.0.0.0/8"}).status_code == 201
    schema = admin.get("/openapi.json").json()["components"]["schemas"]
    assert "confirm_wide" in schema["AllowlistAdd"]["properties"]


def test_page_asks_and_says_what_it_means(admin: httpx.Client) -> None:
    token = form_token(admin.get("/allowlist").text)
    form = {"csrf_token": token, "action": "add", "network": "8.0.0.0/8", "expires": "never"}
    asked = admin.post("/allowlist", data=form)
    assert asked.status_code == 409
    assert "Allow 8.0.0.0/8?" in asked.text
    assert "a public network of 16,777,216 addresses, wider than /16" in asked.text
    assert 'name="confirm_wide" value="1"' in asked.text
    assert 'name="confirmed" value="1"' in asked.text
    assert "8.0.0.0/8" not in _networks(admin)
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', asked.text))
    done = admin.post("/allowlist", data=hidden)
    assert done.status_code == 200 and "Added 8.0.0.0/8." in done.text
    assert "8.0.0.0/8" in _networks(admin)


def test_cli_needs_yes(env: AdminEnv) -> None:
    config: Path = env.config.path
    refused = cli("allow", "add", "::/0", config=config)
    assert refused.returncode == 1
    assert "::/0 is every IPv6 address" in refused.stderr
    assert "Add --yes to allow it anyway." in refused.stderr
    added = cli("allow", "add", "::/0", "--yes", config=config)
    assert added.returncode == 0 and "allowed ::/0" in added.stdout
