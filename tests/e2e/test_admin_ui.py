"""The admin pages in real Chromium (Debian's, driven by Playwright): logging in, the
dashboard at phone and desktop widths (screenshots saved under ``results/screenshots/``),
adding and removing an allowlist entry, the self lock-out refusal, enrolling a second
factor and logging in with a code, and revoking a session while a second browser context
watches its live CEMM page lose the WebSocket.

The web and ws ports admit loopback only through the allowlist entry ``127.0.0.0/8``
(``default_networks`` is a private range), so removing that entry would cut the admin's
own address off: the refusal has something to protect.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from gateway.clock import ManualClock
from gateway.services import audit
from gateway.store import db
from tests.e2e.admin_browser import SCREENSHOTS, Watched, log_in, overflows
from tests.support.admin import (
    ADMIN,
    ADMIN_PASSWORD,
    LOOPBACK_ENTRY,
    USER_PASSWORD,
    AdminEnv,
    add_user,
    admin_gateway,
    auth_config,
)
from tests.support.gateway import cli


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminEnv]:
    with admin_gateway(tmp_path_factory.mktemp("admin-ui"), extra=auth_config(ban_after=3)) as e:
        add_user(e.config, "viewer")
        add_user(e.config, "mallory")
        yield e


@pytest.fixture(scope="module")
def admin_browser(env: AdminEnv, browser: Any) -> Iterator[Watched]:
    """The admin, logged in once through the login page the admin port sends them to."""
    watched = Watched(browser.new_context(viewport={"width": 1280, "height": 900}))
    page = watched.page
    page.goto(env.admin_url("/"))
    assert page.url == env.admin_url("/.gateway/login?next=%2F")
    log_in(page, ADMIN, ADMIN_PASSWORD)
    page.wait_for_url(env.admin_url("/"))
    yield watched
    watched.context.close()


@pytest.fixture
def admin(env: AdminEnv, admin_browser: Watched) -> Watched:
    """The logged-in admin for one test, on the dashboard at desktop width: where it is and
    its errors are this test's alone, whatever an earlier test left (a refused change
    answers 409, which the console reports)."""
    admin_browser.page.set_viewport_size({"width": 1280, "height": 900})
    admin_browser.page.goto(env.admin_url("/"))
    admin_browser.errors.clear()
    return admin_browser


@pytest.fixture
def viewer(env: AdminEnv, browser: Any) -> Iterator[Watched]:
    """Another person, on the CEMM's live page (web port), its WebSocket on the ws port.

    One per test, its session ended afterwards: a test that revokes it leaves nothing
    behind for the next, whatever the order."""
    watched = Watched(browser.new_context())
    page = watched.page
    page.goto(env.config.url("/"))
    log_in(page, "viewer", USER_PASSWORD)
    page.wait_for_url(env.config.url("/"))
    page.wait_for_selector("#status[data-state='live']")
    yield watched
    watched.context.close()
    cli("session", "revoke", "--user", "viewer", config=env.config.path)


def _confirm_dialog(page: Any, button: Any, expected: str) -> None:
    """Press a button whose form asks first; the page's own <dialog> asks; answer yes.

    The page's script (admin.js, deferred) must have run before the press: a press while
    the new page is still loading sends the form unasked, and the server answers with its
    own confirmation page instead of the dialog. A notice that is already visible says
    nothing about that, the document's load event does (it comes after deferred scripts)."""
    page.wait_for_load_state("load")
    button.click()
    dialog = page.locator("dialog.confirm-dialog[open]")
    dialog.wait_for()
    assert expected in dialog.inner_text()
    dialog.locator("[data-confirm-ok]").click()


def test_log_in_and_see_the_dashboard_at_phone_and_desktop_widths(
    env: AdminEnv, admin: Watched, viewer: Watched
) -> None:
    # A ban for the dashboard to show: three wrong passwords for mallory.
    import httpx

    for _ in range(3):
        httpx.post(
            env.config.url("/.gateway/api/login"),
            json={"username": "mallory", "password": "not the password"},
            timeout=10,
        )
    page = admin.page
    page.reload()  # the viewer's socket and mallory's ban are newer than the page
    assert page.locator("h1").inner_text() == "Dashboard"
    assert page.locator("[data-stat='websockets']").inner_text() == "1"
    assert page.locator("[data-stat='bans']").inner_text() == "1"
    sessions = page.locator("[data-panel='sessions']").inner_text()
    assert "viewer" in sessions and ADMIN in sessions
    assert "mallory" in page.locator("[data-panel='bans']").inner_text()
    assert "mallory" in page.locator("[data-panel='denials']").inner_text()

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 800})
        page.reload()
        # Tidy at this width: nothing wider than the screen, nothing out of its box.
        assert overflows(page) == []
        page.screenshot(path=str(SCREENSHOTS / f"admin-dashboard-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    assert admin.errors == []  # no CSP violation, no script error


def test_add_and_remove_an_allowlist_entry(env: AdminEnv, admin: Watched) -> None:
    """Add and remove through the form; whatever happens, neither entry outlives the test
    (127.0.0.1/32 left behind would make the next test's lock-out no lock-out)."""
    try:
        _add_and_remove(env, admin)
    finally:
        for network in ("203.0.113.0/24", "127.0.0.1/32"):
            cli("allow", "remove", network, config=env.config.path)


def _add_and_remove(env: AdminEnv, admin: Watched) -> None:
    page = admin.page
    page.click("nav.admin-nav >> text=Allowlist")
    page.wait_for_url(env.admin_url("/allowlist"))
    page.fill("#network", "203.0.113.0/24")
    page.fill("#label", "office")
    page.select_option("#expires", "7d")
    page.click("#add-form button[value='add']")
    page.locator(".box-notice", has_text="Added 203.0.113.0/24.").wait_for()
    row = page.locator("tr[data-network='203.0.113.0/24']")
    assert "office" in row.inner_text() and "in 6 days" in row.inner_text()

    _confirm_dialog(
        page, row.locator("button", has_text="Remove"), "Remove 203.0.113.0/24 from the allowlist?"
    )
    page.locator(".box-notice", has_text="Removed 203.0.113.0/24.").wait_for()
    assert page.locator("tr[data-network='203.0.113.0/24']").count() == 0

    # "Add my current address": the address the gateway sees, 127.0.0.1.
    page.click("#add-form button[value='add_mine']")
    page.locator(".box-notice", has_text="Added 127.0.0.1/32.").wait_for()
    mine = page.locator("tr[data-network='127.0.0.1/32']")
    assert "my address" in mine.inner_text() and "your address" in mine.inner_text()
    _confirm_dialog(page, mine.locator("button", has_text="Remove"), "Remove 127.0.0.1/32")
    page.locator(".box-notice", has_text="Removed 127.0.0.1/32.").wait_for()
    assert admin.errors == []


def test_a_self_lockout_is_refused(env: AdminEnv, admin: Watched, viewer: Watched) -> None:
    page = admin.page
    page.goto(env.admin_url("/allowlist"))
    row = page.locator(f"tr[data-network='{LOOPBACK_ENTRY}']")
    _confirm_dialog(page, row.locator("button", has_text="Remove"), f"Remove {LOOPBACK_ENTRY}")
    # The server refuses and explains; removing it takes a second, explicit decision.
    page.locator("h1", has_text="This would lock you out").wait_for()
    warning = page.locator("[data-lockout]").inner_text()
    assert "127.0.0.1 could no longer reach the CEMM" in warning
    page.click("text=Cancel")
    page.wait_for_url(env.admin_url("/allowlist"))
    assert page.locator(f"tr[data-network='{LOOPBACK_ENTRY}']").count() == 1
    # Nothing was cut off: the other person's live page is still live.
    assert viewer.page.get_attribute("#status", "data-state") == "live"


def test_enrol_a_second_factor_and_log_in_with_a_code(
    env: AdminEnv, browser: Any, admin: Watched
) -> None:
    # The admin adds erin (a generated password, shown once).
    page = admin.page
    page.goto(env.admin_url("/users"))
    page.fill("#new-name", "erin")
    page.click("#add-user-form button[type=submit]")
    page.locator(".box-notice", has_text="Added user erin.").wait_for()
    password = page.locator("[data-secret]").inner_text().strip()

    erin = Watched(browser.new_context())
    try:
        own = erin.page
        own.goto(env.config.url("/.gateway/account"))
        log_in(own, "erin", password)
        own.wait_for_url(env.config.url("/.gateway/account"))
        own.click("text=Set up")
        secret = re.sub(r"\s", "", own.locator("code.secret").inner_text())
        totp = pyotp.TOTP(secret)
        own.fill("#confirm-code", totp.now())
        own.click("form[action='/.gateway/account/totp/confirm'] button")
        own.locator(".box-notice", has_text="Two-step verification is on.").wait_for()
        assert own.locator("ol.codes li").count() == 10

        own.click("text=Log out")
        own.locator(".box-notice", has_text="You are logged out.").wait_for()
        own.goto(env.config.url("/.gateway/account"))
        log_in(own, "erin", password)
        own.locator("h1", has_text="Two-step verification").wait_for()
        # The code of the next time step: the one used to turn it on cannot be used again.
        own.fill("#code", totp.at(time.time() + 30))
        own.click("form[action='/.gateway/login/totp'] button")
        own.wait_for_url(env.config.url("/.gateway/account"))
        assert "erin" in own.locator("p.muted").first.inner_text()
        assert erin.errors == []
    finally:
        erin.context.close()

    # The admin can reset it (a lost phone), after confirming.
    page.goto(env.admin_url("/users/erin"))
    _confirm_dialog(
        page, page.locator("text=Reset second factor"), "Turn off two-step verification for erin?"
    )
    page.locator(".box-notice", has_text="erin's two-step verification is off.").wait_for()


def test_revoking_a_session_closes_its_live_websocket(
    env: AdminEnv, admin: Watched, viewer: Watched
) -> None:
    assert viewer.page.get_attribute("#status", "data-state") == "live"
    page = admin.page
    page.goto(env.admin_url("/sessions"))
    row = page.locator("tr[data-user='viewer']")
    assert row.count() == 1
    assert "127.0.0.1" in row.inner_text()
    _confirm_dialog(
        page,
        row.get_by_role("button", name="Revoke session of viewer"),
        "End this session of viewer?",
    )
    revoked_at = time.monotonic()
    page.locator(".box-notice", has_text="Ended the session of viewer").wait_for()
    viewer.page.wait_for_selector("#status[data-state='disconnected']", timeout=5_000)
    closed_after = time.monotonic() - revoked_at
    assert closed_after < 5
    # The page dials again every 1.5 s. Two new attempts seen by the browser and no
    # browser handshake reaching the CEMM prove it stays out: events, not a pause. (The
    # gateway's own health check also opens sockets to the CEMM: not the browser's.)
    sim = env.simulator.sim
    seen_before = sim.request_count
    attempts: list[Any] = []
    viewer.page.on("websocket", lambda socket: attempts.append(socket))
    deadline = time.monotonic() + 15
    while len(attempts) < 2 and time.monotonic() < deadline:
        viewer.page.wait_for_timeout(100)
    assert len(attempts) >= 2, "the page did not try to reconnect"
    new = sim.request_count - seen_before
    reached = [r for r in (sim.requests[-new:] if new else []) if r.websocket]
    assert not [r for r in reached if r.header("origin")], "a browser socket reached the CEMM"
    assert viewer.page.get_attribute("#status", "data-state") != "live"
    assert page.locator("tr[data-user='viewer']").count() == 0


def test_the_audit_export_downloads_every_matching_entry(env: AdminEnv, admin: Watched) -> None:
    # More entries than the page shows (200), written straight to the log.
    count, start = 450, time.time() - 3600
    conn = db.connect(env.config.data_dir / "gateway.db")
    with conn:
        for n in range(count):
            audit.record(conn, "bulk-import", "user.add", clock=ManualClock(start + n), n=n)
    conn.close()
    page, earlier_errors = admin.page, len(admin.errors)
    page.goto(env.admin_url("/audit?user=bulk-import"))
    assert page.locator("#audit tbody tr").count() == 200
    assert "the CSV file holds every entry that matches" in page.locator("[data-more]").inner_text()
    assert "limit" not in (page.get_attribute("#export-csv", "href") or "")
    with page.expect_download() as downloading:
        page.click("#export-csv")
    text = Path(downloading.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [json.loads(row["detail"])["n"] for row in rows] == list(range(count))[::-1]
    assert admin.errors[earlier_errors:] == []
