"""The data directory's disk is full: writes (CLI, login) fail with a clear error, traffic
that was already admitted keeps flowing, a revocation takes effect at once and is saved
when there is room, and everything works again once there is room. A gateway stopped
cleanly starts on a full disk, read-only.

The data directory is a small tmpfs mounted for this test (root only; unmounted after).
"""

from __future__ import annotations

import contextlib
import errno
import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread, cli, wait_for

pytestmark = pytest.mark.root

PASSWORD = "correct-horse-battery-staple"
AUTH = f"""[auth]
initial_admin = "admin"
initial_admin_password = "{PASSWORD}"
[auth.bruteforce]
never_ban = []
free_attempts = 1000
"""


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str = "16m") -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the file system is full; returns it."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb", buffering=0) as file:
        for _ in range(100_000):  # bounded: 6 GB, far beyond any tmpfs here
            try:
                file.write(chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC
                break
        # Fill the last partial block too.
        for size in (4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    file.write(b"\0" * size)
    return filler


def _login(config: GatewayConfig) -> httpx.Response:
    return httpx.post(
        config.url("/.gateway/api/login"),
        json={"username": "admin", "password": PASSWORD},
        timeout=30,
    )


def _clear(text: str) -> bool:
    lowered = text.lower()
    return "traceback" not in lowered and any(
        word in lowered for word in ("disk", "full", "space", "storage")
    )


@dataclass
class FullDisk:
    config: GatewayConfig
    gateway: GatewayProcess
    cookie: dict[str, str]
    ws: ClientConnection
    filler: Path
    # A second session (and its WebSocket) to revoke while the disk is full.
    victim_cookie: dict[str, str]
    victim_id: str
    victim_ws: ClientConnection
    bearer: dict[str, str]  # an admin's API token


def _full_message(config: GatewayConfig) -> str:
    return f"the disk holding {config.data_dir} is full"


@pytest.fixture(scope="module")
def full_disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullDisk]:
    """A gateway with a logged-in session and an open WebSocket, then a full disk."""
    simulator = SimulatorThread()
    config = GatewayConfig(
        tmp_path_factory.mktemp("diskfull") / "gw",
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=AUTH,
    )
    with small_tmpfs(config.data_dir):
        gateway = GatewayProcess(config)
        try:
            response = _login(config)
            assert response.status_code == 200
            cookie = {"Cookie": f"cemm_session={response.cookies['cemm_session']}"}
            victim = _login(config)
            assert victim.status_code == 200
            victim_cookie = {"Cookie": f"cemm_session={victim.cookies['cemm_session']}"}
            made = cli("token", "add", "admin", "--name", "ops", config=config.path)
            assert made.returncode == 0, made.stderr
            bearer = {"Authorization": f"Bearer {made.stdout.strip()}"}
            with sqlite3.connect(config.data_dir / "gateway.db") as db:
                (victim_id,) = db.execute(
                    "SELECT id FROM session ORDER BY created_at DESC LIMIT 1"
                ).fetchone()
            origin = f"http://127.0.0.1:{config.http_port}"
            with (
                connect(
                    config.ws_url(), additional_headers=cookie, origin=origin, open_timeout=5
                ) as ws,
                connect(
                    config.ws_url(),
                    additional_headers=victim_cookie,
                    origin=origin,
                    open_timeout=5,
                ) as victim_ws,
            ):
                assert json.loads(ws.recv(timeout=3))["type"] == "reading"
                assert json.loads(victim_ws.recv(timeout=3))["type"] == "reading"
                # Every later write has to grow the WAL: none can land in reused space.
                with sqlite3.connect(config.data_dir / "gateway.db") as db:
                    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                filler = fill(config.data_dir)
                yield FullDisk(
                    config,
                    gateway,
                    cookie,
                    ws,
                    filler,
                    victim_cookie,
                    victim_id,
                    victim_ws,
                    bearer,
                )
        finally:
            gateway.close()
            simulator.close()


def test_admitted_traffic_keeps_flowing(full_disk: FullDisk) -> None:
    api = full_disk.config.url("/api/v1/public/cemm")
    # Some writes fail meanwhile (session activity, hit counts): nothing of it shows here.
    for _ in range(4):
        assert httpx.get(api, headers=full_disk.cookie, timeout=5).status_code == 200
        assert json.loads(full_disk.ws.recv(timeout=3))["type"] == "reading"
        time.sleep(0.5)
    assert full_disk.gateway.process.poll() is None


def test_a_cli_write_fails(full_disk: FullDisk) -> None:
    refused = cli("allow", "add", "2001:db8::99/128", config=full_disk.config.path)
    assert refused.returncode != 0


def test_a_cli_write_fails_with_a_clear_message(full_disk: FullDisk) -> None:
    refused = cli("allow", "add", "2001:db8::98/128", config=full_disk.config.path)
    assert refused.returncode != 0
    assert _clear(refused.stderr + refused.stdout), refused.stderr


def test_a_login_fails_without_a_session(full_disk: FullDisk) -> None:
    denied = _login(full_disk.config)
    assert denied.status_code >= 500
    assert "traceback" not in denied.text.lower()
    assert "cemm_session" not in denied.cookies
    assert full_disk.gateway.process.poll() is None


def test_a_login_fails_with_a_clear_message(full_disk: FullDisk) -> None:
    denied = _login(full_disk.config)
    assert denied.status_code in (503, 507), denied.status_code
    assert _clear(denied.text), denied.text[:500]


def test_the_cli_names_the_full_disk_and_still_reads(full_disk: FullDisk) -> None:
    refused = cli("allow", "add", "2001:db8::96/128", config=full_disk.config.path)
    assert refused.returncode != 0
    assert _full_message(full_disk.config) in refused.stderr, refused.stderr
    listed = cli("allow", "list", config=full_disk.config.path)
    assert listed.returncode == 0, listed.stderr


def test_the_log_healthz_and_dashboard_say_the_disk_is_full(full_disk: FullDisk) -> None:
    config = full_disk.config
    message = _full_message(config)
    wait_for(lambda: message in full_disk.gateway.log(), "the log says the disk is full")
    health = httpx.get(
        config.url("/healthz", port="admin"), headers=full_disk.bearer, timeout=10
    ).json()
    assert health["storage"]["disk_full"] is True
    assert health["storage"]["message"] == message
    dashboard = httpx.get(
        config.url("/api/status", port="admin"), headers=full_disk.bearer, timeout=10
    ).json()
    assert dashboard["storage_problem"] == message


def test_a_session_revoked_while_the_disk_is_full_is_cut_off_at_once(
    full_disk: FullDisk,
) -> None:
    config = full_disk.config
    api = config.url("/api/v1/public/cemm")
    assert httpx.get(api, headers=full_disk.victim_cookie, timeout=5).status_code == 200
    revoked = httpx.delete(
        config.url(f"/api/sessions/{full_disk.victim_id}", port="admin"),
        headers=full_disk.bearer,
        timeout=10,
    )
    assert revoked.status_code == 204, revoked.text
    # In force at once: no more requests, and its WebSocket is closed.
    assert httpx.get(api, headers=full_disk.victim_cookie, timeout=5).status_code != 200
    with pytest.raises(ConnectionClosed):
        for _ in range(50):  # bounded: readings come every second
            full_disk.victim_ws.recv(timeout=5)
    # The other session is not affected.
    assert httpx.get(api, headers=full_disk.cookie, timeout=5).status_code == 200


def test_with_room_again_writes_work_without_a_restart(full_disk: FullDisk) -> None:
    full_disk.filler.unlink()
    assert _login(full_disk.config).status_code == 200
    added = cli("allow", "add", "2001:db8::97/128", config=full_disk.config.path)
    assert added.returncode == 0, added.stderr
    assert json.loads(full_disk.ws.recv(timeout=3))["type"] == "reading"
    assert full_disk.gateway.process.poll() is None


def test_the_held_revocation_is_saved_once_there_is_room(full_disk: FullDisk) -> None:
    # Runs after the filler was removed.
    def saved() -> bool:
        with sqlite3.connect(full_disk.config.data_dir / "gateway.db", timeout=10) as db:
            row = db.execute(
                "SELECT revoked_at FROM session WHERE id = ?", (full_disk.victim_id,)
            ).fetchone()
        return row is not None and row[0] is not None

    wait_for(saved, "the revocation is saved", timeout=10)
    api = full_disk.config.url("/api/v1/public/cemm")
    assert httpx.get(api, headers=full_disk.victim_cookie, timeout=5).status_code != 200


def test_a_gateway_stopped_cleanly_starts_on_a_full_disk_read_only(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    simulator = SimulatorThread()
    config = GatewayConfig(
        tmp_path_factory.mktemp("fullstart") / "gw",
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=AUTH,
    )
    with small_tmpfs(config.data_dir):
        gateway = GatewayProcess(config)
        try:
            login = _login(config)
            assert login.status_code == 200
            cookie = {"Cookie": f"cemm_session={login.cookies['cemm_session']}"}
            assert cli("allow", "add", "2001:db8::5/128", config=config.path).returncode == 0
            code, _ = gateway.terminate()
            assert code == 0
            gateway.close()
            filler = fill(config.data_dir)

            gateway = GatewayProcess(config)  # starts: before, "disk I/O error"
            message = _full_message(config)
            assert message in gateway.log()
            api = config.url("/api/v1/public/cemm")
            # Sessions (and the allowlist) are enforced from the existing database.
            assert httpx.get(api, headers=cookie, timeout=5).status_code == 200
            assert httpx.get(api, timeout=5).status_code != 200
            listed = cli("allow", "list", config=config.path)
            assert listed.returncode == 0 and "2001:db8::5/128" in listed.stdout, listed.stderr
            refused = cli("allow", "add", "2001:db8::6/128", config=config.path)
            assert refused.returncode != 0 and message in refused.stderr, refused.stderr
            denied = _login(config)
            assert denied.status_code == 503 and message in denied.text, denied.text[:300]

            filler.unlink()
            wait_for(lambda: "the database is writable again" in gateway.log(), "writable again")
            assert _login(config).status_code == 200
            assert cli("allow", "add", "2001:db8::6/128", config=config.path).returncode == 0
            assert "Traceback" not in gateway.log()
        finally:
            gateway.close()
            simulator.close()
