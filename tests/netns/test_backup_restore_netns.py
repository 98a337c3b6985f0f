"""A VPN peer's existing configuration completes a handshake with a gateway restored from
a backup into a fresh data directory: the server's WireGuard key and the peer come back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.netns.test_wireguard import _environment
from tests.support.gateway import ROOT, cli

pytestmark = [pytest.mark.root, pytest.mark.timeout(240)]


def test_a_phone_reconnects_to_the_restored_gateway(tmp_path: Path) -> None:
    with _environment(tmp_path) as env:
        env.phone.tunnel_up(env.phone_config)
        assert env.phone.works(), env.log.read_text()[-3000:]
        passphrase = tmp_path / "passphrase"
        passphrase.write_text("netns backup passphrase\n")
        archive = tmp_path / "gateway.cgbk"
        made = cli(
            "backup",
            "create",
            "--output",
            str(archive),
            "--passphrase-file",
            str(passphrase),
            config=env.config,
        )
        assert made.returncode == 0, made.stderr
        env.process.send_signal(signal.SIGTERM)
        env.process.wait(15)
        assert not env.phone.works(timeout=3)

        fresh = tmp_path / "restored.toml"
        fresh.write_text(
            env.config.read_text().replace(str(tmp_path / "data"), str(tmp_path / "restored"))
        )
        restored = cli(
            "backup", "restore", str(archive), "--passphrase-file", str(passphrase), config=fresh
        )
        assert restored.returncode == 0, restored.stderr
        log = tmp_path / "restored.log"
        env.gateway.popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(fresh)],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
        )
        env.gateway.wait_tcp(env.lab.gateway_address_v4, 80, timeout=30)
        # The phone's tunnel is the one it had: same keys, nothing reconfigured.
        assert env.phone.works(timeout=40), log.read_text()[-3000:]
        handshake = env.gateway.run(["wg", "show", env.interface, "latest-handshakes"])
        assert handshake.stdout.split()[1] != "0"
