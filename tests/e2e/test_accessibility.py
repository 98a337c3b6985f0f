"""axe-core in real Chromium on every page of the gateway, at phone width (and the main ones
at desktop width): no serious or critical violation (labels, focus order, contrast, touch
targets, ...).

The pages: the login page, the account page, the message a logout leaves, every page of
the admin app with something on it to check, the second-factor step, a guest link's page,
and the gateway menu opened on the CEMM's page (only the menu: the CEMM's own page is not
the gateway's to fix), a confirmation page (what a browser without script gets before a
change), and the page a peer link opens (here: a link that is not valid, as the WireGuard
tests own the valid one).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.admin_browser import log_in
from tests.support.admin import (
    ADMIN,
    ADMIN_PASSWORD,
    USER_PASSWORD,
    AdminEnv,
    add_user,
    admin_gateway,
)
from tests.support.axe import axe_source, serious_violations
from tests.support.gateway import cli

# Every page at phone width (where touch targets are tightest); at desktop width the pages
# whose layout changes most (tables instead of cards). Colours and labels do not change.
ADMIN_PAGES = [
    "/",
    "/allowlist",
    "/users",
    "/users/anna",
    "/tokens",
    "/guests",
    "/peers",
    "/sessions",
    "/bans",
    "/audit",
    "/notify",
    "/backup",
]
PAGES_BY_WIDTH = {375: ADMIN_PAGES, 1280: ["/", "/users", "/audit"]}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminEnv]:
    axe_source()  # fetched (or skipped) before a gateway is started for nothing
    with admin_gateway(tmp_path_factory.mktemp("accessibility")) as made:
        add_user(made.config, "anna")
        cli("token", "add", "anna", "--name", "home-assistant", config=made.config.path)
        yield made


def _context(browser: Any, width: int) -> Any:
    # bypass_csp: axe is injected as an inline script, which the pages' policies forbid.
    return browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)


@pytest.mark.parametrize("width", sorted(PAGES_BY_WIDTH))
def test_the_admin_app(env: AdminEnv, browser: Any, width: int) -> None:
    context = _context(browser, width)
    page = context.new_page()
    page.goto(env.admin_url("/"))
    found = {"login": serious_violations(page)}
    log_in(page, ADMIN, ADMIN_PASSWORD)
    page.wait_for_url(env.admin_url("/"))
    for path in PAGES_BY_WIDTH[width]:
        page.goto(env.admin_url(path))
        found[path] = serious_violations(page)
    context.close()
    assert {where: lines for where, lines in found.items() if lines} == {}


def test_the_account_page_the_menu_and_logging_out(env: AdminEnv, browser: Any) -> None:
    context = _context(browser, 375)
    page = context.new_page()
    page.goto(env.config.url("/dashboard"))
    log_in(page, "anna", USER_PASSWORD)
    page.wait_for_url(env.config.url("/dashboard"))
    page.locator("[data-cemm-gateway-menu] button[data-part=button]").click()
    page.get_by_text("Signed in as anna").wait_for()
    page.add_script_tag(content=axe_source())
    menu = page.evaluate(
        """async () => (await axe.run({include: [['[data-cemm-gateway-menu]']]}))
            .violations.filter(v => ['serious', 'critical'].includes(v.impact))
            .map(v => v.id + ': ' + v.help)"""
    )
    found = {"menu": menu}
    page.goto(env.config.url("/.gateway/account"))
    found["account"] = serious_violations(page)
    page.locator("form[action='/.gateway/logout'] button[type=submit]").first.click()
    page.get_by_text("You are logged out.").wait_for()
    found["logged out"] = serious_violations(page)
    context.close()
    assert {where: lines for where, lines in found.items() if lines} == {}


def test_the_guest_link_page(env: AdminEnv, browser: Any) -> None:
    made = cli("guest", "add", "installer Jan", "--expires", "1h", config=env.config.path)
    assert made.returncode == 0, made.stderr
    found = re.search(r"/\.gateway/guest/[A-Za-z0-9_-]+", made.stdout)
    assert found, made.stdout
    context = _context(browser, 375)
    page = context.new_page()
    page.goto(env.config.url(found.group(0)))
    violations = serious_violations(page)
    context.close()
    assert violations == []


def test_the_second_factor_step(env: AdminEnv, browser: Any) -> None:
    add_user(env.config, "tess")
    # A second factor set up directly in the database: the step is what is checked here.
    with sqlite3.connect(env.config.data_dir / "gateway.db") as db:
        db.execute(
            "UPDATE user SET totp_secret = ?, totp_enabled = 1 WHERE name = 'tess'",
            ("JBSWY3DPEHPK3PXP",),
        )
    context = _context(browser, 375)
    page = context.new_page()
    page.goto(env.config.url("/dashboard"))
    log_in(page, "tess", USER_PASSWORD)
    page.locator("input[name=code]").wait_for()
    violations = serious_violations(page)
    context.close()
    assert violations == []


_POST_WITHOUT_CONFIRMATION = """([action, fields]) => {
  const form = document.createElement('form');
  form.method = 'post';
  form.action = action;
  for (const [name, value] of Object.entries(fields)) {
    const input = document.createElement('input');
    input.type = 'hidden';
    input.name = name;
    input.value = value;
    form.appendChild(input);
  }
  document.body.appendChild(form);
  form.submit();  // no submit event: the page's confirmation dialog stays out of it
}"""


def test_a_confirmation_page_and_a_peer_links_page(env: AdminEnv, browser: Any) -> None:
    context = _context(browser, 375)
    page = context.new_page()
    page.goto(env.admin_url("/"))
    log_in(page, ADMIN, ADMIN_PASSWORD)
    page.wait_for_url(env.admin_url("/"))
    page.goto(env.admin_url("/users/anna"))
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    fields = {"action": "disable", "name": "anna", "csrf_token": token}
    with page.expect_navigation():
        page.evaluate(_POST_WITHOUT_CONFIRMATION, ["/users/anna", fields])
    assert page.locator("form.confirm-form").count() == 1, page.content()[:2000]
    found = {"confirmation page": serious_violations(page)}
    page.goto(env.config.url("/.gateway/peer/" + "x" * 43))
    found["peer link"] = serious_violations(page)
    context.close()
    assert {where: lines for where, lines in found.items() if lines} == {}
