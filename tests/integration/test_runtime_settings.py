"""Settings changed at run time in the admin app, over HTTP against one running gateway:
notifications set up from the Notifications page (receivers masked, in force without a
restart), and the WireGuard switch locked when the environment sets it.

The gateway runs with ``CEMM_GATEWAY_WIREGUARD__ENABLED=false`` in its environment and no
``[notify]`` in its file. Turning WireGuard on needs root: tests/netns/test_vpn_switch.py.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.test_notify import SECRET, Receiver
from tests.support.admin import LOOPBACK_ENTRY, auth_config, form_token, logged_in
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread, cli, wait_for

ENV = {"CEMM_GATEWAY_WIREGUARD__ENABLED": "false"}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayConfig]:
    directory = tmp_path_factory.mktemp("runtime-settings")
    simulator = SimulatorThread()
    config = GatewayConfig(
        directory,
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=auth_config() + '[notify]\nurls_file = ""\n',
    )
    gateway: GatewayProcess | None = None
    try:
        config.write()
        result = cli("allow", "add", LOOPBACK_ENTRY, "--label", "loopback", config=config.path)
        assert result.returncode == 0, result.stderr
        gateway = GatewayProcess(config, env=ENV)
        yield config
    finally:
        if gateway is not None:
            gateway.close()
        simulator.close()


@pytest.fixture
def admin(env: GatewayConfig) -> Iterator[httpx.Client]:
    with logged_in(env.url("", port="admin")) as client:
        yield client


def _post(admin: httpx.Client, page: str, **fields: str) -> httpx.Response:
    token = form_token(admin.get(page).text)
    return admin.post(page, data={"csrf_token": token, **fields})


def _log(env: GatewayConfig) -> str:
    return (env.directory / "gateway.log").read_text()


def test_wireguard_set_in_the_environment_is_locked(
    env: GatewayConfig, admin: httpx.Client
) -> None:
    page = admin.get("/peers")
    assert page.status_code == 200 and "data-vpn-settings" in page.text
    assert 'data-locked="wireguard.enabled"' in page.text
    assert "Locked: set in environment variable CEMM_GATEWAY_WIREGUARD__ENABLED." in page.text
    assert 'name="enabled"' not in page.text  # no switch to flip
    assert 'name="endpoint"' in page.text  # the endpoint is not set anywhere: changeable
    # A hand-made form that tries anyway changes only what is not locked.
    saved = _post(admin, "/peers", action="vpn", enabled="1", endpoint="vpn.example.org:51820")
    assert saved.status_code == 200, saved.text
    assert "WireGuard is off." in saved.text and "data-wireguard-off" in saved.text
    assert admin.get("/api/peers").status_code == 404
    assert 'value="vpn.example.org:51820"' in admin.get("/peers").text
    # The endpoint's rule is the file's rule.
    bad = _post(admin, "/peers", action="vpn", endpoint="no port")
    assert bad.status_code == 400 and "must be host:port" in bad.text


def test_receivers_are_added_masked_and_in_force_without_restart(
    env: GatewayConfig, admin: httpx.Client
) -> None:
    receiver = Receiver()
    try:
        page = admin.get("/notify")
        assert "No receiver" in page.text and 'id="receiver-form"' in page.text
        refused = _post(admin, "/notify", action="add", url=f"nope://{SECRET}@x")
        assert refused.status_code == 400 and "not an Apprise URL" in refused.text
        assert SECRET not in refused.text

        added = _post(admin, "/notify", action="add", url=receiver.url)
        assert added.status_code == 200, added.text
        assert "Added the receiver json://•••." in added.text
        assert SECRET not in added.text and 'data-receiver="0"' in added.text

        sent = _post(admin, "/notify", action="test")
        assert "Sent a test message to json://•••." in sent.text
        wait_for(lambda: "Test message" in receiver.titles(), "the test message")

        # An audit event now reaches the receiver: delivery started at run time.
        change = admin.post("/api/allowlist", json={"network": "10.9.8.0/24", "label": "x"})
        assert change.status_code == 201, change.text
        wait_for(lambda: "Allowlist changed" in receiver.titles(), "the allowlist message")
        assert "Gateway started" not in receiver.titles()  # not announced a second time

        # The CLI sends to the receivers set in the admin app too.
        sent_by_cli = cli("notify", "test", config=env.path)
        assert sent_by_cli.returncode == 0, sent_by_cli.stderr
        assert "Sent a test message to json://•••." in sent_by_cli.stdout
        wait_for(lambda: receiver.titles().count("Test message") == 2, "the CLI's test message")

        removed = _post(admin, "/notify", action="remove", index="0")
        assert "Removed the receiver json://•••." in removed.text
        assert "No receiver" in removed.text
    finally:
        receiver.close()
    conn = sqlite3.connect(env.data_dir / "gateway.db")
    try:
        details = [row[0] for row in conn.execute("SELECT detail FROM audit_log")]
        stored = conn.execute("SELECT value FROM runtime_setting WHERE key = 'notify.urls'")
        assert json.loads(stored.fetchone()[0]) == []
    finally:
        conn.close()
    assert not any(SECRET in detail for detail in details)
    assert any("1 receiver(s)" in detail for detail in details)
    assert SECRET not in _log(env)


def test_events_and_delay_are_saved_and_shown(env: GatewayConfig, admin: httpx.Client) -> None:
    saved = _post(admin, "/notify", action="save", cemm_down_after="45", **{"event:ban": "1"})
    assert saved.status_code == 200 and "Saved; in force now." in saved.text
    assert 'name="event:ban" type="checkbox" value="1" checked' in saved.text
    assert 'name="event:user.add" type="checkbox" value="1">' in saved.text
    assert 'value="45"' in saved.text
    none = _post(admin, "/notify", action="save", cemm_down_after="45")
    assert none.status_code == 400 and "Choose at least one event" in none.text
    bad = _post(admin, "/notify", action="save", cemm_down_after="x", **{"event:ban": "1"})
    assert bad.status_code == 400 and "as a number" in bad.text
