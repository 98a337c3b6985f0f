"""The dashboard stays current: ``/dashboard/live`` is the page's content alone, for the
page's script to poll; and a CEMM that answers on no port is one sentence, not one line
per port and check."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.admin import AdminEnv, admin_gateway, logged_in


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminEnv]:
    with admin_gateway(tmp_path_factory.mktemp("dashboard-live")) as made:
        yield made


def test_the_live_fragment_is_the_dashboard_without_its_frame(env: AdminEnv) -> None:
    with logged_in(env.admin_url("")) as admin:
        page = admin.get("/")
        live = admin.get("/dashboard/live")
    assert 'data-live="/dashboard/live"' in page.text
    assert '<script src="/static/dashboard.js" defer></script>' in page.text
    assert live.status_code == 200
    assert live.headers["cache-control"] == "no-store"
    assert live.text.lstrip().startswith("<h1>Dashboard</h1>")
    assert "<html" not in live.text and "admin-nav" not in live.text
    assert "updates by itself" in live.text and "data-live-status" in live.text


def test_the_live_fragment_needs_an_admin(env: AdminEnv) -> None:
    anonymous = httpx.get(env.admin_url("/dashboard/live"), timeout=10)
    assert anonymous.status_code != 200 or "<h1>Dashboard</h1>" not in anonymous.text


def _until(admin: httpx.Client, condition: str, present: bool, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = admin.get("/dashboard/live").text
        if (condition in text) == present:
            return text
        assert time.monotonic() < deadline, text
        time.sleep(0.3)


def test_a_cemm_that_answers_nowhere_is_one_sentence(env: AdminEnv) -> None:
    with logged_in(env.admin_url("")) as admin, logged_in(env.config.url("")) as user:
        assert user.get("/api/v1/public/cemm").status_code == 200
        env.simulator.stop()
        try:
            assert user.get("/api/v1/public/cemm").status_code in (502, 503)
            text = _until(admin, "data-cemm-down", present=True)
            assert text.count("The CEMM is not answering, since") == 1
            assert "not answering</span>" not in text  # no per-port badges
            assert "has not answered on port" not in text  # nor the monitor's port lines
        finally:
            env.simulator.restart()
        assert user.get("/api/v1/public/cemm").status_code == 200
        _until(admin, "data-cemm-down", present=False)
