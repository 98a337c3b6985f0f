"""A guest link in Chromium: an admin makes one on a phone-width admin page, a second
browser context (the guest's phone) opens the link, gives a name and sees the CEMM's live
reading through the gateway; a third context with the same link (``--browsers 1``) is
refused. The guest's phone is set to Dutch: the guest page is Dutch, with no English left,
and fits at 375 and 1280 px."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.admin_browser import SCREENSHOTS, Watched, log_in, overflows
from tests.support.admin import ADMIN, ADMIN_PASSWORD, AdminEnv, admin_gateway, auth_config
from tests.support.languages import english_left

PHONE = {"width": 375, "height": 800}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminEnv]:
    with admin_gateway(tmp_path_factory.mktemp("guest-e2e"), extra=auth_config()) as e:
        yield e


def _admin_makes_a_link(env: AdminEnv, browser: Any) -> str:
    context = browser.new_context(viewport=PHONE)
    admin = Watched(context)
    page = admin.page
    page.goto(env.admin_url("/"))
    log_in(page, ADMIN, ADMIN_PASSWORD)
    page.wait_for_url(env.admin_url("/"))
    page.goto(env.admin_url("/guests"))
    page.fill("#guest-name", "installer Jan")
    page.select_option("#guest-role", "viewer")
    page.fill("#guest-expires", "2h")
    page.fill("#guest-browsers", "1")
    page.click("#create-guest-form button[type=submit]")
    page.wait_for_selector("#made-url")
    url: str = page.input_value("#made-url")
    assert page.locator("#made-link svg").count() == 1, "no QR code"
    assert overflows(page) == [], overflows(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "guest-link-made-375.png"), full_page=True)
    assert admin.errors == [], admin.errors
    context.close()
    return url


def _open_as_guest(browser: Any, url: str, name: str, locale: str | None = None) -> Watched:
    guest = Watched(browser.new_context(viewport=PHONE, **({"locale": locale} if locale else {})))
    guest.page.goto(url)
    if locale == "nl-NL":
        page = guest.page
        assert page.get_attribute("html", "lang") == "nl"
        assert english_left(page.content(), ["installer Jan"]) == []
        for width in (375, 1280):
            page.set_viewport_size({"width": width, "height": 800})
            assert overflows(page) == [], (width, overflows(page))
        page.set_viewport_size(PHONE)
    guest.page.fill("#guest_name", name)
    guest.page.click("form button[type=submit]")
    return guest


def test_an_admin_makes_a_link_and_a_guest_sees_the_live_reading(
    env: AdminEnv, browser: Any
) -> None:
    url = _admin_makes_a_link(env, browser)
    assert url.startswith("http://") and "/.gateway/guest/" in url
    # The link names the gateway's web port; the test reaches it on loopback.
    path = url[url.index("/.gateway/guest/") :]
    url = env.config.url(path)
    guest = _open_as_guest(browser, url, "Jan", locale="nl-NL")
    page = guest.page
    page.wait_for_url(env.config.url("/"))
    page.wait_for_selector('#status[data-state="live"]', timeout=5000)
    power = page.locator("#power")
    assert power.get_attribute("data-watts")
    first = power.get_attribute("data-seq")
    deadline = time.monotonic() + 3
    while power.get_attribute("data-seq") == first and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert power.get_attribute("data-seq") != first, "the reading does not keep coming"
    assert guest.errors == [], guest.errors
    # Another phone with the same link: refused.
    other = _open_as_guest(browser, url, "someone else")
    other.page.wait_for_load_state("load")
    assert "opened in another browser" in other.page.content()
    assert "cemm_session" not in {c["name"] for c in other.context.cookies()}
    other.context.close()
    guest.context.close()
