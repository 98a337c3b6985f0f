"""The gateway is killed with SIGKILL, again and again, while the CLI writes users and
allowlist entries (and some CLI runs are killed too): afterwards the database passes
``PRAGMA integrity_check`` and holds every change the CLI reported as done."""

from __future__ import annotations

import ipaddress
import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import TRUSTED_LOOPBACK
from tests.support.gateway import ROOT, GatewayConfig, GatewayProcess, SimulatorThread, cli

ROUNDS = 5
TIME_LIMIT = 90.0


class Writer(threading.Thread):
    """Adds users and allowlist entries through the CLI until told to stop (bounded)."""

    def __init__(self, config: Path, deadline: float) -> None:
        super().__init__(daemon=True)
        self.config = config
        self.deadline = deadline
        self.stop = threading.Event()
        self.users: list[str] = []  # reported done (exit 0)
        self.entries: list[str] = []
        self.killed = 0
        self.failed: list[str] = []
        self.rng = random.Random(10)

    def _command(self, i: int) -> tuple[list[str], str | None, str, str]:
        if i % 2 == 0:
            name = f"user{i}"
            return (
                ["user", "add", name, "--role", "user", "--password-stdin"],
                f"Kill-test-password-{i}x\n",
                "user",
                name,
            )
        network = f"2001:db8::{i:x}/128"
        return (["allow", "add", network, "--label", f"kill test {i}"], None, "entry", network)

    def run(self) -> None:
        i = 0
        while not self.stop.is_set() and time.monotonic() < self.deadline and i < 400:
            args, stdin, kind, value = self._command(i)
            i += 1
            if i % 4 == 0:
                # Killed mid-way: may or may not have happened, must not corrupt anything.
                process = subprocess.Popen(
                    [sys.executable, "-m", "gateway", *args, "--config", str(self.config)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    cwd=ROOT,
                )
                if stdin and process.stdin:
                    process.stdin.write(stdin.encode())
                    process.stdin.close()
                time.sleep(self.rng.uniform(0.05, 0.8))
                process.send_signal(signal.SIGKILL)
                if process.wait(10) == 0:
                    (self.users if kind == "user" else self.entries).append(value)
                else:
                    self.killed += 1
                continue
            done = cli(*args, config=self.config, input=stdin)
            if done.returncode == 0:
                (self.users if kind == "user" else self.entries).append(value)
            else:
                self.failed.append(f"{args}: {done.returncode} {done.stderr.strip()[-300:]}")


def test_sigkill_loop_while_the_cli_writes(tmp_path: Path) -> None:
    simulator = SimulatorThread()
    config = GatewayConfig(
        tmp_path / "gw",
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=TRUSTED_LOOPBACK,
    )
    config.write()
    rng = random.Random(7)
    writer = Writer(config.path, time.monotonic() + TIME_LIMIT)
    kills = 0
    try:
        gateway = GatewayProcess(config)  # creates the database before the writer starts
        writer.start()
        for _ in range(ROUNDS):
            time.sleep(rng.uniform(0.2, 1.5))
            gateway.process.send_signal(signal.SIGKILL)
            gateway.process.wait(10)
            gateway.close()
            kills += 1
            gateway = GatewayProcess(config)
        time.sleep(1.0)
    finally:
        writer.stop.set()
        writer.join(60)
        gateway.close()
        simulator.close()
    assert not writer.is_alive()
    assert kills == ROUNDS
    assert writer.users and writer.entries, "the CLI never completed a write"
    # A refusal from the CLI is allowed (e.g. a locked database) only if it says why.
    for failure in writer.failed:
        assert "Traceback" not in failure, failure

    with sqlite3.connect(config.data_dir / "gateway.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        users = {row[0] for row in db.execute("SELECT name FROM user")}
        rows = db.execute("SELECT network FROM allowlist_entry").fetchall()
        networks = {ipaddress.ip_network(row[0]) for row in rows}
    assert set(writer.users) <= users, sorted(set(writer.users) - users)
    assert {ipaddress.ip_network(n) for n in writer.entries} <= networks

    # And the gateway starts on it once more, and the CLI reads it.
    gateway = GatewayProcess(config)
    try:
        listed = json.loads(cli("allow", "list", "--json", config=config.path).stdout)
        assert len(listed["entries"]) >= len(writer.entries)
    finally:
        gateway.close()
