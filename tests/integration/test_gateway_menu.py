"""The gateway menu on the CEMM's pages, through a real gateway and simulator.

One gateway with the menu on (the default) in front of a simulator that sends a strict
Content-Security-Policy, one with ``[ui] menu = false``: HTML pages get the menu's script
(whose integrity hash the widened policy admits), everything else - JSON, CSS, the
WebSocket - passes byte for byte, and ``/.gateway/menu`` tells who is signed in.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.support.admin import ADMIN_PASSWORD, USER_PASSWORD, add_user, logged_in
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread

STRICT_CSP = "default-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'"
TAG = re.compile(r'<script src="/\.gateway/static/menu\.js" integrity="([^"]+)" async></script>')


class Env:
    def __init__(self, directory: Path, *, menu: bool) -> None:
        self.config = GatewayConfig(
            directory,
            upstream_http_port=0,
            upstream_ws_port=0,
            extra=(
                f'[auth]\ninitial_admin_password = "{ADMIN_PASSWORD}"\n'
                f"[ui]\nmenu = {'true' if menu else 'false'}\n"
            ),
        )
        self.simulator = SimulatorThread(csp=STRICT_CSP, page_ws_port=self.config.ws_port)
        self.config.upstream_http_port = self.simulator.http_port
        self.config.upstream_ws_port = self.simulator.ws_port
        self.config.write()
        add_user(self.config, "anna")
        self.gateway = GatewayProcess(self.config)

    def direct(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.simulator.http_port}{path}", timeout=10)

    def close(self) -> None:
        try:
            self.gateway.close()
        finally:
            self.simulator.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    made = Env(tmp_path_factory.mktemp("menu"), menu=True)
    try:
        yield made
    finally:
        made.close()


def test_a_cemm_page_gets_the_menu_script_admitted_by_its_policy(env: Env) -> None:
    with logged_in(env.config.url("/")) as client:
        page = client.get("/dashboard")
        script = client.get("/.gateway/static/menu.js")
    assert page.status_code == 200
    found = TAG.search(page.text)
    assert found, page.text[:400]
    digest = base64.b64encode(hashlib.sha256(script.content).digest()).decode()
    assert found.group(1) == f"sha256-{digest}"
    # The page is the device's own, with the one tag added.
    assert page.text.replace(found.group(0), "") == env.direct("/dashboard").text
    policy = page.headers["content-security-policy"]
    assert f"script-src 'self' 'sha256-{digest}'" in policy
    assert "connect-src 'self'" in policy
    assert "form-action 'self'" in policy
    assert "style-src 'self'" in policy  # styles are set through the CSSOM: nothing added


@pytest.mark.parametrize("path", ["/api/v1/public/meters", "/assets/app.css", "/assets/app.js"])
def test_other_answers_pass_unchanged(env: Env, path: str) -> None:
    with logged_in(env.config.url("/")) as client:
        through = client.get(path)
    assert through.status_code == 200
    assert through.content == env.direct(path).content
    assert "menu.js" not in through.text


def test_the_websocket_passes_unchanged(env: Env) -> None:
    with logged_in(env.config.url("/")) as client:
        token = client.cookies["cemm_session"]
    with connect(
        env.config.ws_url("/ws"),
        origin=f"http://127.0.0.1:{env.config.http_port}",
        additional_headers={"Cookie": f"cemm_session={token}"},
        open_timeout=5,
    ) as socket:
        message = socket.recv(timeout=5)
    assert isinstance(message, str) and message.startswith("{") and "menu" not in message


def test_the_menu_says_who_is_signed_in(env: Env) -> None:
    with logged_in(env.config.url("/")) as admin:
        answer = admin.get("/.gateway/menu")
    assert answer.headers["cache-control"] == "no-store"
    menu = answer.json()
    assert menu["who"] == "Signed in as admin"
    assert menu["links"] == [
        {"label": "Account", "href": "/.gateway/account"},
        {"label": "Admin app", "href": f"http://127.0.0.1:{env.config.admin_port}/"},
    ]
    assert menu["logout"] == {"label": "Log out", "action": "/.gateway/logout"}
    with logged_in(env.config.url("/"), "anna", USER_PASSWORD) as user:
        menu = user.get("/.gateway/menu").json()
    assert menu["who"] == "Signed in as anna"
    assert [link["label"] for link in menu["links"]] == ["Account"]


def test_menu_off_leaves_pages_as_the_cemm_sent_them(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    off = Env(tmp_path_factory.mktemp("menu-off"), menu=False)
    try:
        with logged_in(off.config.url("/")) as client:
            page = client.get("/dashboard")
        assert page.status_code == 200
        assert page.content == off.direct("/dashboard").content
        assert page.headers["content-security-policy"] == STRICT_CSP
    finally:
        off.close()


def test_the_menu_without_a_session_offers_the_login(env: Env) -> None:
    menu = httpx.get(env.config.url("/.gateway/menu"), timeout=10).json()
    assert menu["who"] == "Not signed in."
    assert menu["links"] == [{"label": "Log in", "href": "/.gateway/login"}]
    assert "logout" not in menu
