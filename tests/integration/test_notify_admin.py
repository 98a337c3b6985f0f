"""The notifications page: receivers masked and locked, "send a test message", and a
delivery failure on the dashboard."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from gateway.netutil import free_port
from tests.integration.test_notify import SECRET, Receiver
from tests.support.admin import ADMIN, ADMIN_PASSWORD, admin_gateway, auth_config, form_token
from tests.support.gateway import wait_for


@contextmanager
def _browser(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=15) as client:
        yield _logged_in(client)


def _logged_in(client: httpx.Client) -> httpx.Client:
    page = client.get("/notify", follow_redirects=True)
    form = {
        "username": ADMIN,
        "password": ADMIN_PASSWORD,
        "next": "/notify",
        "csrf_token": form_token(page.text),
    }
    assert client.post("/.gateway/login", data=form).status_code == 303
    return client


def test_the_page_masks_receivers_and_sends_a_test_message(tmp_path: Path) -> None:
    receiver = Receiver()
    extra = auth_config() + f'[notify]\nurls = [{json.dumps(receiver.url)}]\nevents = ["ban"]\n'
    try:
        with admin_gateway(tmp_path, extra=extra) as env, _browser(env.admin_url("")) as browser:
            page = browser.get("/notify")
            assert page.status_code == 200
            assert "json://•••" in page.text
            assert SECRET not in page.text
            assert "locked" in page.text
            sent = browser.post(
                "/notify", data={"csrf_token": form_token(page.text), "action": "test"}
            )
            assert sent.status_code == 200
            assert "Sent a test message to json://•••." in sent.text
            wait_for(lambda: "Test message" in receiver.titles(), "the test message")
            assert "Gateway started" not in receiver.titles()  # not among [notify] events
    finally:
        receiver.close()


def test_a_delivery_failure_is_on_the_dashboard(tmp_path: Path) -> None:
    url = f"json://notify:{SECRET}@127.0.0.1:{free_port()}/hook"
    extra = auth_config() + f"[notify]\nurls = [{json.dumps(url)}]\n"
    with admin_gateway(tmp_path, extra=extra) as env, _browser(env.admin_url("")) as browser:
        # "Gateway started" cannot be delivered: the dashboard says so.
        wait_for(lambda: "data-notify-problem" in browser.get("/").text, "the failure shown", 15)
        page = browser.get("/")
        assert "gateway.start: a receiver did not accept the message" in page.text
        assert SECRET not in page.text
        assert SECRET not in env.gateway.log()
