"""The gateway menu on the CEMM's page in real Chromium at phone width (375 px).

The simulated CEMM sends a strict Content-Security-Policy (no inline script or style); the
menu must still draw, stay clear of the CEMM's own navigation, open with who is signed in,
and log out from there - with no console error (a CSP violation is one).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.admin_browser import Watched, log_in
from tests.support.admin import ADMIN_PASSWORD
from tests.support.browser import chromium
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread

# Strict, as a device might send: no inline script or style; its socket on the other port.
STRICT_CSP = "default-src 'self'; connect-src 'self' ws:; img-src 'self' data:; form-action 'self'"
MENU = "[data-cemm-gateway-menu]"
PHONE = {"width": 375, "height": 740}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayConfig]:
    made = GatewayConfig(
        tmp_path_factory.mktemp("menu-e2e"),
        upstream_http_port=0,
        upstream_ws_port=0,
        extra=f'[auth]\ninitial_admin_password = "{ADMIN_PASSWORD}"\n',
    )
    simulator = SimulatorThread(csp=STRICT_CSP, page_ws_port=made.ws_port)
    made.upstream_http_port, made.upstream_ws_port = simulator.http_port, simulator.ws_port
    gateway = GatewayProcess(made)
    try:
        yield made
    finally:
        gateway.close()
        simulator.close()


@pytest.fixture(scope="module")
def browser(config: GatewayConfig) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_the_menu_on_the_dashboard_at_phone_width(config: GatewayConfig, browser: Any) -> None:
    context = browser.new_context(viewport=PHONE)
    watched = Watched(context)
    page = watched.page
    page.goto(config.url("/dashboard"))
    log_in(page, "admin", ADMIN_PASSWORD)
    page.wait_for_url("**/dashboard")
    page.wait_for_selector('#status[data-state="live"]')  # the CEMM's own page still works
    button = page.locator(f"{MENU} button[data-part=button]")
    button.wait_for(state="visible")
    menu_box = page.locator(MENU).bounding_box()
    assert menu_box is not None
    assert menu_box["width"] <= 60 and menu_box["height"] <= 60  # small
    assert menu_box["x"] + menu_box["width"] <= PHONE["width"]
    assert menu_box["y"] + menu_box["height"] <= PHONE["height"]
    for part in ("header.top", "header.top nav a >> nth=0", "header.top nav a >> nth=1"):
        box = page.locator(part).bounding_box()
        assert box is not None
        assert not _overlap(menu_box, box), (part, box, menu_box)
    # The CEMM's nav links stay clickable (nothing lies on top of them).
    page.click("header.top nav a[data-view-link=systeem]")
    page.wait_for_selector("section[data-view=systeem]:not([hidden])")

    button.click()
    panel = page.locator(f"{MENU} [data-part=panel]")
    panel.get_by_text("Signed in as admin").wait_for()
    assert panel.get_by_role("link", name="Account").get_attribute("href") == ("/.gateway/account")
    admin_link = panel.get_by_role("link", name="Admin app")
    assert admin_link.get_attribute("href") == config.url("/", port="admin")
    assert button.get_attribute("aria-expanded") == "true"
    page.keyboard.press("Escape")
    assert button.get_attribute("aria-expanded") == "false"

    button.click()
    panel.get_by_role("button", name="Log out").click()
    page.get_by_text("You are logged out.").wait_for()
    page.goto(config.url("/dashboard"))
    page.wait_for_url("**/.gateway/login?next=*")
    assert watched.errors == [], watched.errors
    context.close()
