"""The admin dashboard in real Chromium stays current without reloading: a login made
elsewhere shows up in its counters within a few polls, with no navigation and no console
error (the polling script runs under the admin app's CSP)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.admin_browser import Watched, log_in
from tests.support.admin import ADMIN, ADMIN_PASSWORD, AdminEnv, admin_gateway, logged_in


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminEnv]:
    with admin_gateway(tmp_path_factory.mktemp("dashboard-live-e2e")) as made:
        yield made


def test_the_dashboard_updates_itself(env: AdminEnv, browser: Any) -> None:
    watched = Watched(browser.new_context(viewport={"width": 375, "height": 800}))
    page = watched.page
    page.goto(env.admin_url("/"))
    log_in(page, ADMIN, ADMIN_PASSWORD)
    page.wait_for_url(env.admin_url("/"))
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    sessions = page.locator("[data-stat=sessions]")
    before = int(sessions.inner_text())
    with logged_in(env.config.url("")):  # someone logs in on the CEMM's port
        page.wait_for_function(
            "([selector, count]) => Number(document.querySelector(selector).textContent) > count",
            arg=["[data-stat=sessions]", before],
            timeout=15_000,
        )
    assert navigations == []
    assert "updates by itself" in page.locator("[data-live-status]").inner_text()
    assert watched.errors == [], watched.errors
    watched.context.close()
