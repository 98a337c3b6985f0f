"""Run-time settings: which value is in force and where it comes from
(gateway/settings/runtime.py), storing changes (gateway/services/runtime_settings.py) and
putting them into force (gateway/live_settings.py)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.live_settings import LiveSettings
from gateway.services import runtime_settings
from gateway.services.errors import Conflict, Invalid
from gateway.settings import Settings, SettingsError, load_settings
from gateway.settings import runtime as rules
from gateway.store import db
from gateway.store.worker import DbWorker


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = db.connect(tmp_path / "gateway.db")
    yield connection
    connection.close()


def _loaded(tmp_path: Path, text: str = "") -> Settings:
    path = tmp_path / "gateway.toml"
    path.write_text(f'data_dir = "{tmp_path}"\n[upstream]\nhost = "127.0.0.1"\n{text}')
    return load_settings(path)


def test_nothing_set_means_default_and_changeable(tmp_path: Path) -> None:
    settings = _loaded(tmp_path)
    for key in rules.RUNTIME_KEYS:
        assert rules.lock_of(settings, key) is None
        assert rules.source_of(settings, {}, key) == rules.Source("default", "the default")
    assert rules.source_of(settings, {"wireguard.enabled": True}, "wireguard.enabled").origin == (
        "stored"
    )


def test_a_key_in_the_file_locks_it_naming_file_and_key(tmp_path: Path) -> None:
    # Even written with its default value: the file says so, the file wins.
    settings = _loaded(tmp_path, "[wireguard]\nenabled = false\n")
    lock = rules.lock_of(settings, "wireguard.enabled")
    assert lock is not None and lock.locked and lock.origin == "file"
    assert lock.text == f"{tmp_path / 'gateway.toml'}: [wireguard] enabled"
    assert rules.lock_of(settings, "wireguard.endpoint") is None


def test_the_environment_locks_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CEMM_GATEWAY_WIREGUARD__ENABLED", "true")
    monkeypatch.setenv("CEMM_GATEWAY_WIREGUARD__ENDPOINT", "vpn.example.org:51820")
    monkeypatch.setenv("CEMM_GATEWAY_NOTIFY", json.dumps({"cemm_down_after": 30}))
    settings = _loaded(tmp_path, "[wireguard]\nenabled = false\n")
    lock = rules.lock_of(settings, "wireguard.enabled")
    assert lock == rules.Source(
        "environment", "environment variable CEMM_GATEWAY_WIREGUARD__ENABLED"
    )
    down = rules.lock_of(settings, "notify.cemm_down_after")
    assert down == rules.Source("environment", "environment variable CEMM_GATEWAY_NOTIFY")
    assert rules.lock_of(settings, "notify.events") is None
    # A stored value never beats the environment.
    applied = rules.apply(settings, {"wireguard.enabled": False, "notify.cemm_down_after": 5})
    assert applied.wireguard.enabled is True and applied.notify.cemm_down_after == 30


def test_urls_file_locks_the_receivers(tmp_path: Path) -> None:
    settings = _loaded(tmp_path, '[notify]\nurls_file = "/run/secrets/notify"\n')
    lock = rules.lock_of(settings, "notify.urls")
    assert lock is not None and lock.locked
    assert "[notify] urls_file" in lock.text and "/run/secrets/notify" in lock.text


def test_apply_takes_valid_stored_values_and_skips_invalid_ones(tmp_path: Path) -> None:
    settings = _loaded(tmp_path)
    applied = rules.apply(
        settings,
        {
            "wireguard.enabled": True,
            "wireguard.endpoint": "not an endpoint",
            "notify.events": ["ban"],
            "not.a.key": 1,
        },
    )
    assert applied.wireguard.enabled is True
    assert applied.wireguard.endpoint == ""
    assert applied.notify.events == ["ban"]
    assert applied.listen == settings.listen
    # The locks are still those of the loaded settings.
    assert applied.config_file == tmp_path / "gateway.toml"


def test_validate_uses_the_file_rules_and_shows_an_example(tmp_path: Path) -> None:
    settings = _loaded(tmp_path)
    assert rules.validate(settings, "notify.cemm_down_after", "60") == 60.0
    with pytest.raises(Exception, match=r"wireguard.endpoint: must be host:port.*example"):
        rules.validate(settings, "wireguard.endpoint", "nohost")
    with pytest.raises(Exception, match="unknown event"):
        rules.validate(settings, "notify.events", ["no.such.event"])


def test_save_stores_audits_and_hides_receivers(tmp_path: Path, conn: sqlite3.Connection) -> None:
    settings = _loaded(tmp_path)
    changes = {"notify.urls": ["json://127.0.0.1:9/secret-token"], "wireguard.enabled": True}
    stored = runtime_settings.save(conn, settings, changes, actor="admin")
    assert stored == changes
    row = conn.execute("SELECT actor, detail FROM audit_log WHERE event = 'settings.change'")
    actor, detail = row.fetchone()
    assert actor == "admin" and "secret-token" not in detail
    assert json.loads(detail)["settings"]["notify.urls"] == "1 receiver(s)"


def test_save_refuses_locked_unknown_and_invalid(tmp_path: Path, conn: sqlite3.Connection) -> None:
    settings = _loaded(tmp_path, '[wireguard]\nenabled = true\nendpoint = "a.example:1"\n')
    with pytest.raises(
        Conflict, match=r"wireguard.enabled is set in .*gateway.toml: \[wireguard\]"
    ):
        runtime_settings.save(conn, settings, {"wireguard.enabled": False}, actor="admin")
    with pytest.raises(Invalid, match="cannot be changed at run time"):
        runtime_settings.save(conn, settings, {"listen.http_port": 8080}, actor="admin")
    with pytest.raises(Invalid, match=r"notify\.cemm_down_after"):
        runtime_settings.save(conn, settings, {"notify.cemm_down_after": -1}, actor="admin")
    assert runtime_settings.stored(conn) == {}


def test_live_change_runs_hooks_and_undoes_them_on_refusal(tmp_path: Path) -> None:
    settings = _loaded(tmp_path)
    worker = DbWorker(settings.database_path)
    calls: list[tuple[bool, bool]] = []

    async def first(before: Settings, after: Settings) -> None:
        calls.append((before.wireguard.enabled, after.wireguard.enabled))

    async def refusing(before: Settings, after: Settings) -> None:
        if after.notify.cemm_down_after == 1:
            raise Invalid("no", field="x")

    async def scenario() -> None:
        live = LiveSettings(settings, {})
        live.on_change(first)
        live.on_change(refusing)
        with pytest.raises(Invalid, match="needs endpoint"):
            await live.change(worker, {"wireguard.enabled": True}, actor="admin")
        after = await live.change(
            worker,
            {"wireguard.enabled": True, "wireguard.endpoint": "h.example:51820"},
            actor="admin",
        )
        assert after.wireguard.enabled and live.current is after
        assert live.source("wireguard.enabled").origin == "stored"
        with pytest.raises(Invalid):
            await live.change(
                worker,
                {"wireguard.enabled": False, "notify.cemm_down_after": 1},
                actor="admin",
            )
        assert live.current.wireguard.enabled
        assert calls == [(False, True), (True, False), (False, True)]
        assert live.stored == {"wireguard.enabled": True, "wireguard.endpoint": "h.example:51820"}

    try:
        asyncio.run(scenario())
    finally:
        worker.close()
    conn = db.connect(settings.database_path)
    try:
        assert LiveSettings(settings, runtime_settings.stored(conn)).current.wireguard.enabled
    finally:
        conn.close()


def test_in_force_is_the_loaded_settings_with_the_stored_values(
    tmp_path: Path, conn: sqlite3.Connection
) -> None:
    settings = _loaded(tmp_path, "[notify]\ncemm_down_after = 30.0\n")
    runtime_settings.save(conn, settings, {"wireguard.enabled": True}, actor="admin")
    conn.execute("INSERT INTO runtime_setting VALUES ('notify.cemm_down_after', '5', 0, 'someone')")
    found = runtime_settings.in_force(conn, settings)
    assert found.wireguard.enabled is True
    assert found.notify.cemm_down_after == 30.0  # the file wins over what is stored


class _GatewayWithoutTunnel:
    """Just enough of a running gateway for the WireGuard switch: the interface cannot be
    made (no NET_ADMIN, say)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.watcher = type("Watcher", (), {"conn": None})()
        self._wireguard = None
        self._tasks: list[asyncio.Task[None]] = []

    async def _start_wireguard(self, conn: object) -> None:
        raise SettingsError("cannot bring up WireGuard interface wg0: no /dev/net/tun")


def test_wireguard_switch_refuses_when_the_interface_cannot_be_made(tmp_path: Path) -> None:
    from gateway.switches import Switches

    settings = _loaded(tmp_path)
    worker = DbWorker(settings.database_path)
    gateway = _GatewayWithoutTunnel(settings)
    switches = Switches(gateway, None)  # type: ignore[arg-type]

    async def scenario() -> None:
        live = LiveSettings(settings, {})
        live.on_change(switches.wireguard)
        with pytest.raises(Invalid, match="no /dev/net/tun"):
            await live.change(
                worker,
                {"wireguard.enabled": True, "wireguard.endpoint": "h.example:51820"},
                actor="admin",
            )
        assert live.current is settings and live.stored == {}
        assert gateway.settings is settings and gateway._wireguard is None

    try:
        asyncio.run(scenario())
    finally:
        worker.close()
