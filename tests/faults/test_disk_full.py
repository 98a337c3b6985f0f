"""The data directory's disk is full: writes (CLI, login) fail with a clear error, traffic
that was already admitted keeps flowing, and everything works again once there is room.

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
from websockets.sync.client import ClientConnection, connect

from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread, cli

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
            origin = f"http://127.0.0.1:{config.http_port}"
            with connect(
                config.ws_url(), additional_headers=cookie, origin=origin, open_timeout=5
            ) as ws:
                assert json.loads(ws.recv(timeout=3))["type"] == "reading"
                # Every later write has to grow the WAL: none can land in reused space.
                with sqlite3.connect(config.data_dir / "gateway.db") as db:
                    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                filler = fill(config.data_dir)
                yield FullDisk(config, gateway, cookie, ws, filler)
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


def test_with_room_again_writes_work_without_a_restart(full_disk: FullDisk) -> None:
    full_disk.filler.unlink()
    assert _login(full_disk.config).status_code == 200
    added = cli("allow", "add", "2001:db8::97/128", config=full_disk.config.path)
    assert added.returncode == 0, added.stderr
    assert json.loads(full_disk.ws.recv(timeout=3))["type"] == "reading"
    assert full_disk.gateway.process.poll() is None
