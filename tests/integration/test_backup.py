"""Backups of a running gateway, restored into a fresh data directory: everything is back,
and every damaged or refused restore changes nothing."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pyotp

from gateway import backup
from gateway.backup.restore import restore
from gateway.store import db
from gateway.store.migrations import MIGRATIONS
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread, cli

PASSWORD = "correct-horse-battery-staple"
USER_PASSWORD = "a-user-password-123"
PASSPHRASE = "a long backup passphrase"
AUTH = (
    f'[auth]\ninitial_admin = "admin"\ninitial_admin_password = "{PASSWORD}"\n'
    "[auth.bruteforce]\nnever_ban = []\nfree_attempts = 1000\nban_after = 1000\n"
)


def _config(
    tmp_path: Path, name: str, simulator: SimulatorThread, auth: str = AUTH
) -> GatewayConfig:
    return GatewayConfig(
        tmp_path / name,
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=auth,
    )


def _ok(*args: str, config: Path | None = None, input: str | None = None) -> str:
    result = cli(*args, config=config, input=input)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _login(config: GatewayConfig, name: str, password: str, **extra: str) -> httpx.Response:
    return httpx.post(
        config.url("/.gateway/api/login"),
        json={"username": name, "password": password, **extra},
        timeout=10,
    )


def _populate(config: GatewayConfig) -> tuple[str, str]:
    """A user with a password and a second factor, an API token, an allowlist entry, a
    ban; returns the TOTP secret and the token."""
    path = config.path
    _ok(
        "user",
        "add",
        "anna",
        "--role",
        "user",
        "--password-stdin",
        config=path,
        input=USER_PASSWORD + "\n",
    )
    secret = pyotp.random_base32()
    with sqlite3.connect(config.data_dir / "gateway.db") as conn:
        conn.execute(
            "UPDATE user SET totp_secret = ?, totp_enabled = 1 WHERE name = 'anna'", (secret,)
        )
        conn.execute(
            "INSERT INTO ban (subject, reason, created_at, until) VALUES "
            "('address:192.0.2.7', 'too many failed logins', ?, ?)",
            (time.time(), time.time() + 86400),
        )
    token = _ok("token", "add", "anna", "--name", "ha", config=path).strip()
    _ok("allow", "add", "198.51.100.0/24", "--label", "office", config=path)
    return secret, token


def _write(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    return path


def test_round_trip_into_a_fresh_data_dir(tmp_path: Path, simulator: SimulatorThread) -> None:
    old = _config(tmp_path, "old", simulator)
    passphrase_file = _write(tmp_path / "passphrase", PASSPHRASE)
    wrong_file = _write(tmp_path / "wrong", "not the passphrase")
    archive = tmp_path / "gateway.cgbk"
    running = GatewayProcess(old)
    try:
        secret, token = _populate(old)
        made = _ok(
            "backup",
            "create",
            "--output",
            str(archive),
            "--passphrase-file",
            str(passphrase_file),
            config=old.path,
        )
        assert "wrote" in made
        # The running gateway holds its data directory: a restore there is refused.
        refused = cli(
            "backup",
            "restore",
            str(archive),
            "--passphrase-file",
            str(passphrase_file),
            "--force",
            config=old.path,
        )
        assert refused.returncode == 1 and "a gateway is running on" in refused.stderr
    finally:
        running.close()
    assert archive.stat().st_mode & 0o777 == 0o600
    verified = _ok("backup", "verify", str(archive), "--passphrase-file", str(passphrase_file))
    assert f"schema {len(MIGRATIONS)}" in verified

    new = _config(tmp_path, "new", simulator)
    new.write()
    wrong = cli(
        "backup", "restore", str(archive), "--passphrase-file", str(wrong_file), config=new.path
    )
    assert wrong.returncode == 1 and "wrong passphrase" in wrong.stderr
    assert not (new.data_dir / "gateway.db").exists()
    restored = _ok(
        "backup",
        "restore",
        str(archive),
        "--passphrase-file",
        str(passphrase_file),
        config=new.path,
    )
    assert "restored the backup" in restored
    again = cli(
        "backup",
        "restore",
        str(archive),
        "--passphrase-file",
        str(passphrase_file),
        config=new.path,
    )
    assert again.returncode == 1 and "already holds data" in again.stderr
    assert sorted(p.name for p in new.data_dir.iterdir() if p.name.startswith(".replaced")) == []

    gateway = GatewayProcess(new)
    try:
        assert _login(new, "anna", USER_PASSWORD).status_code == 401  # needs the code
        code = pyotp.TOTP(secret).now()
        assert _login(new, "anna", USER_PASSWORD, totp=code).status_code == 200
        assert _login(new, "admin", PASSWORD).status_code == 200
        bearer = {"Authorization": f"Bearer {token}"}
        assert httpx.get(new.url("/_sim/headers"), headers=bearer, timeout=5).status_code == 200
        entries = json.loads(_ok("allow", "list", "--json", config=new.path))["entries"]
        assert any(e["network"] == "198.51.100.0/24" for e in entries)
        assert "192.0.2.7" in _ok("bans", "list", config=new.path)
        events = {e["event"] for e in json.loads(_ok("audit", "--json", config=new.path))}
        assert {"user.add", "token.add"} <= events
    finally:
        gateway.close()


def test_damaged_files_are_refused_and_nothing_changes(
    tmp_path: Path, simulator: SimulatorThread
) -> None:
    config = _config(tmp_path, "gw", simulator)
    config.write()
    _ok(
        "user",
        "add",
        "bob",
        "--role",
        "user",
        "--password-stdin",
        config=config.path,
        input=USER_PASSWORD + "\n",
    )
    passphrase_file = _write(tmp_path / "passphrase", PASSPHRASE)
    archive = tmp_path / "b.cgbk"
    _ok(
        "backup",
        "create",
        "--output",
        str(archive),
        "--passphrase-file",
        str(passphrase_file),
        config=config.path,
    )
    good = archive.read_bytes()
    before = sorted(str(p.relative_to(config.data_dir)) for p in config.data_dir.rglob("*"))
    cases = {
        "flipped": good[:300] + bytes([good[300] ^ 1]) + good[301:],
        "truncated": good[: len(good) // 2],
        "newer": good[:8] + b"\x00\x09" + good[10:],
    }
    messages = {"flipped": "altered", "truncated": "truncated", "newer": "newer gateway"}
    for case, data in cases.items():
        damaged = tmp_path / f"{case}.cgbk"
        damaged.write_bytes(data)
        for command in ("verify", "restore"):
            args = ["backup", command, str(damaged), "--passphrase-file", str(passphrase_file)]
            if command == "restore":
                args.append("--force")
            result = cli(*args, config=config.path)
            assert result.returncode == 1, (case, command)
            assert messages[case] in result.stderr, (case, result.stderr)
    after = sorted(str(p.relative_to(config.data_dir)) for p in config.data_dir.rglob("*"))
    assert after == before  # no .replaced-* directory, nothing written


def _restart(config: GatewayConfig) -> GatewayProcess:
    """The gateway again after a SIGKILL; a second try when a loaded machine makes the first
    miss the harness's 20 s start-up wait (a start that fails outright fails at once)."""
    try:
        return GatewayProcess(config)
    except RuntimeError as error:
        if "did not become ready" not in str(error):
            raise
        return GatewayProcess(config)


def test_backups_under_load_and_sigkill_restore_consistent(
    tmp_path: Path, simulator: SimulatorThread
) -> None:
    # Thousands of failed logins from loopback must not ban it: /healthz tells the harness
    # the restarted gateway is up.
    never_ban = AUTH.replace("never_ban = []", 'never_ban = ["127.0.0.0/8", "::1/128"]')
    config = _config(tmp_path, "busy", simulator, never_ban)
    gateway = GatewayProcess(config)
    _ok(
        "user",
        "add",
        "carl",
        "--role",
        "user",
        "--password-stdin",
        config=config.path,
        input=USER_PASSWORD + "\n",
    )
    stop, running = threading.Event(), threading.Event()
    running.set()

    def traffic() -> None:
        while not stop.is_set():
            # Paused while the gateway starts again: a loaded machine starts it slowly.
            if not running.wait(1):
                continue
            try:
                _login(config, "carl", USER_PASSWORD)
                _login(config, "carl", "wrong password")
                httpx.get(config.url("/"), timeout=2)
            except httpx.HTTPError:
                time.sleep(0.05)

    workers = [threading.Thread(target=traffic, daemon=True)]
    for worker in workers:
        worker.start()
    fast = backup.KdfParams(time_cost=1, memory_kib=8, parallelism=1)
    made: list[bytes] = []
    try:
        for _round in range(3):
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                made.append(backup.create(config.data_dir, "pw", now=time.time(), kdf=fast))
            gateway.process.kill()  # SIGKILL, mid-write
            made.append(backup.create(config.data_dir, "pw", now=time.time(), kdf=fast))
            gateway.close()
            running.clear()
            gateway = _restart(config)
            running.set()
    finally:
        stop.set()
        gateway.close()
        for worker in workers:
            worker.join(5)
    assert len(made) >= 6
    for number, data in enumerate(made):
        target = tmp_path / f"restored-{number}"
        restore(backup.load(data, "pw"), target, force=False, now=time.time())
        conn = db.connect(target / "gateway.db")
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("SELECT count(*) FROM user WHERE name = 'carl'").fetchone()[0] == 1
        conn.close()
