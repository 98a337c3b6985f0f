"""Every admin page on a 375 px phone, and at 1280 px, with the longest values it shows:
e-mail addresses as user names (one of them the signed-in admin's), a 64-character name,
a phone's user agent, an IPv6 network with a long label, a long token name and a token
shown once, a ban, the page that asks before a change when script is off, and the
WireGuard peers with a configuration and a one-time link. Nothing may be wider than the
window, and no box's content wider than the box (a button pushed out of its card).
Screenshots at 375 px are saved under ``results/screenshots/``.

The same pages in Dutch, for a browser that asks for Dutch (longer words, the same
boxes): each fits at both widths, says ``<html lang="nl">``, and has no English left
(tests/support/languages.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from gateway.admin import actions, pages
from gateway.admin.models import PeerOut, UserOut
from gateway.admin.security import Caller
from gateway.wireguard import config as wgconfig
from gateway.wireguard.keys import generate_private_key, public_key
from tests.e2e.admin_browser import SCREENSHOTS, Watched, log_in, overflows
from tests.support.admin import (
    USER_PASSWORD,
    AdminEnv,
    add_user,
    admin_gateway,
    auth_config,
    logged_in,
)
from tests.support.languages import english_left

LONG_ADMIN = "margriet.van.der.heijden@example.com"
LONGEST_USER = "annemarie.van.der.sluijs-hoogerwerf@zonnepanelen.voorbeeld.nl.x"  # 64
LONG_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 "
    "HomeAssistant/2024.5.1/companion-app-build-2024.5.1-full-release"
)
LONG_NETWORK = "2001:db8:1234:5678:9abc:def0:1234:5600/120"
LONG_LABEL = "the-office-network-of-" + LONG_ADMIN
LONG_TOKEN = "home-assistant-integration-for-" + LONGEST_USER[:60]
LONG_PEER = "margriet.van.der.heijden.samsung-galaxy-s24-ultra.werktelefoon1"  # 64
WIDTHS = (375, 1280)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminEnv]:
    with admin_gateway(
        tmp_path_factory.mktemp("admin-widths"), extra=auth_config(ban_after=3)
    ) as e:
        add_user(e.config, LONG_ADMIN, role="admin")
        add_user(e.config, LONGEST_USER)
        with logged_in(e.admin_url("")) as admin:
            entry = {"network": LONG_NETWORK, "label": LONG_LABEL, "expires": "30d"}
            assert admin.post("/api/allowlist", json=entry).status_code == 201
            token = {"user": LONGEST_USER, "name": LONG_TOKEN}
            assert admin.post("/api/tokens", json=token).status_code == 201
            # Audit entries about the long name; before its session starts (being made an
            # admin without a second factor ends an account's sessions).
            for role in ("admin", "user"):
                assert admin.patch(f"/api/users/{LONGEST_USER}", json={"role": role}).is_success
        login = e.config.url("/.gateway/api/login")
        agent = {"User-Agent": LONG_AGENT}
        body = {"username": LONGEST_USER, "password": USER_PASSWORD}
        assert httpx.post(login, json=body, headers=agent, timeout=10).is_success
        for _ in range(3):  # a ban on the long name
            httpx.post(login, json={**body, "password": "not the password"}, timeout=10)
        with logged_in(e.admin_url("")) as admin:
            assert admin.get("/api/bans").json(), "expected a ban on the long name"
        yield e


@pytest.fixture(scope="module")
def phone(env: AdminEnv, browser: Any) -> Iterator[Watched]:
    """The admin with the long name, on a phone that sends a long user agent."""
    context = browser.new_context(viewport={"width": 375, "height": 800}, user_agent=LONG_AGENT)
    watched = Watched(context)
    watched.page.goto(env.admin_url("/"))
    log_in(watched.page, LONG_ADMIN, USER_PASSWORD)
    watched.page.wait_for_url(env.admin_url("/"))
    yield watched
    context.close()


def _check(page: Any, name: str, problems: dict[str, list[str]], *, language: str = "en") -> None:
    """Record what sticks out of ``page`` at each width; a screenshot at the phone's.

    Measured once the page has loaded with its stylesheet: after a form post the new
    page's elements can be there before its CSS is (an unstyled table is wide)."""
    page.wait_for_load_state("load")
    if language != "en":
        lang = page.get_attribute("html", "lang")
        data = (LONG_ADMIN, LONGEST_USER, LONG_AGENT, LONG_LABEL, LONG_TOKEN, LONG_PEER, "admin")
        left = english_left(page.content(), data) if lang == language else [f"<html lang={lang}>"]
        if left:
            problems[f"{name} in {language}"] = left
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        found = overflows(page)
        if found:
            problems[f"{name} at {width} px"] = found
        if width == WIDTHS[0]:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shot = f"admin-long-names-{name}-375.png"
            if language != "en":
                shot = f"admin-long-names-{name}-{language}-375.png"
            page.screenshot(path=str(SCREENSHOTS / shot), full_page=True)
    page.set_viewport_size({"width": WIDTHS[0], "height": 800})


def test_every_admin_page_fits_a_phone_with_long_names(env: AdminEnv, phone: Watched) -> None:
    page = phone.page
    problems: dict[str, list[str]] = {}
    paths = [path for path, _ in pages.NAV]
    paths += [f"/users/{LONGEST_USER}", f"/users/{LONG_ADMIN}", "/no-such-page"]
    for path in paths:
        page.goto(env.admin_url(path))
        name = path.strip("/").split("@")[0].replace("/", "-") or "dashboard"
        _check(page, name, problems)

    # A new token, shown once, with the notice that names it and its user.
    page.goto(env.admin_url("/tokens"))
    page.select_option("#token-user", LONGEST_USER)
    page.fill("#token-name", LONG_TOKEN + "-2")
    page.click("#create-token-form button[type=submit]")
    page.locator("[data-secret]").wait_for()
    _check(page, "token-created", problems)

    assert problems == {}, "\n".join(f"{k}: {v}" for k, v in problems.items())
    assert [e for e in phone.errors if "404 (Not Found)" not in e] == []  # /no-such-page


def test_the_confirmation_page_fits_a_phone(env: AdminEnv, browser: Any) -> None:
    """Without script the server asks before a change, on a page of its own."""
    problems: dict[str, list[str]] = {}
    context = browser.new_context(viewport={"width": 375, "height": 800}, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(env.admin_url("/sessions"))
        log_in(page, LONG_ADMIN, USER_PASSWORD)
        page.wait_for_url(env.admin_url("/sessions"))
        row = page.locator(f"tr[data-user='{LONGEST_USER}']")
        row.locator("button", has_text="Revoke all").click()
        page.locator("h1", has_text=f"Log {LONGEST_USER} out everywhere?").wait_for()
        _check(page, "confirm", problems)
    finally:
        context.close()
    assert problems == {}, problems


def _peers_page_with_wireguard_on() -> str:
    """The peers page as the app renders it with WireGuard on: a peer with the longest
    name, its configuration and a one-time link (this gateway has WireGuard off)."""
    private_key = generate_private_key()
    config = wgconfig.client_config(
        private_key=private_key,
        address_v4="10.77.0.2",
        address_v6="fd77:6761:7465:7761:7900::2",
        server_public_key=public_key(generate_private_key()),
        preshared_key=None,
        endpoint="cemm-gateway.a-rather-long-dynamic-dns-name.example.net:51820",
        gateway_v4="10.77.0.1",
        gateway_v6="fd77:6761:7465:7761:7900::1",
        keepalive=25,
    )
    now = time.time()
    peer = PeerOut(
        name=LONG_PEER,
        user=LONGEST_USER,
        public_key=public_key(private_key),
        address_v4="10.77.0.2",
        address_v6="fd77:6761:7465:7761:7900::2",
        enabled=True,
        state="enabled",
        trusted=True,
        expires_at=now + 86400 * 30,
        created_at=now,
        first_handshake_at=None,
        config_available=True,
        latest_handshake=None,
        handshake_age=None,
        rx_bytes=123_456_789,
        tx_bytes=987_654_321,
    )
    owner = UserOut(
        name=LONGEST_USER,
        role="user",
        disabled=False,
        email=None,
        oidc_managed=False,
        totp_enabled=False,
        has_password=True,
        created_at=now,
    )
    link = {
        "path": "/.gateway/peer/" + "k" * 43,
        "url": "https://cemm-gateway.a-rather-long-dynamic-dns-name.example.net/.gateway/peer/"
        + "k" * 43,
    }
    admin = Caller(LONG_ADMIN, "admin", "session", "s", "t", None, "127.0.0.1")
    return pages.templates.get_template("peers.html").render(
        caller=admin,
        csrf_token="t",
        current_path="/peers",
        now=now,
        notice=f"Added the peer {LONG_PEER}.",
        error=None,
        shown_once=None,
        form={},
        wireguard=SimpleNamespace(settings=SimpleNamespace(endpoint="vpn.example.net:51820")),
        wireguard_off=actions.WIREGUARD_OFF,
        peers=[peer],
        users=[owner],
        expiry_labels=pages.PEER_EXPIRY_LABELS,
        panel=pages.config_panel(LONG_PEER, config, link),
    )


def test_the_peers_page_with_wireguard_on_fits_a_phone(env: AdminEnv, phone: Watched) -> None:
    page = phone.page
    html = _peers_page_with_wireguard_on()
    # Served in place of the real page; its stylesheets and script come from the gateway.
    page.route(
        env.admin_url("/peers"), lambda route: route.fulfill(body=html, content_type="text/html")
    )
    try:
        page.goto(env.admin_url("/peers"))
        assert page.locator(f"tr[data-peer='{LONG_PEER}']").count() == 1
        page.click("details summary")  # the configuration as text
        problems: dict[str, list[str]] = {}
        _check(page, "peers-wireguard-on", problems)
    finally:
        page.unroute(env.admin_url("/peers"))
    assert problems == {}, problems


ZONED_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})? ([A-Z]{2,5}|[+-]\d{2,4})\b")


def test_every_page_in_dutch_fits_and_has_no_english_left(env: AdminEnv, browser: Any) -> None:
    """A phone set to Dutch: the login page, every admin page, a user's page, the
    not-found page and the account page, at 375 and 1280 px."""
    context = browser.new_context(
        viewport={"width": 375, "height": 800}, user_agent=LONG_AGENT, locale="nl-NL"
    )
    problems: dict[str, list[str]] = {}
    try:
        watched = Watched(context)
        page = watched.page
        page.goto(env.admin_url("/"))
        _check(page, "login", problems, language="nl")
        log_in(page, LONG_ADMIN, USER_PASSWORD)
        page.wait_for_url(env.admin_url("/"))
        paths = [path for path, _ in pages.NAV]
        paths += [f"/users/{LONGEST_USER}", "/no-such-page", "/.gateway/account"]
        for path in paths:
            page.goto(env.admin_url(path))
            name = path.strip("/").split("@")[0].replace("/", "-") or "dashboard"
            _check(page, name, problems, language="nl")
            if path == "/":
                # Times carry the home's zone ("2026-12-06 21:10:03 CET").
                as_of = page.locator("[data-live-status]").inner_text()
                if not ZONED_TIME.search(as_of):
                    problems["dashboard time zone"] = [as_of]
    finally:
        context.close()
    assert problems == {}, "\n".join(f"{k}: {v}" for k, v in problems.items())
