"""Notifications reach a receiver on loopback (Apprise's ``json://`` to an HTTP server the
test runs): each event once and within seconds; a dead or hanging receiver costs neither
memory nor proxying; the CEMM going away and coming back, and its clock drifting."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.netutil import free_port
from tests.faults.conftest import SimulatorProcess
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread, cli, wait_for

PASSWORD = "correct-horse-battery-staple"
SECRET = "s3cret-token"


class Receiver:
    """An HTTP server that keeps every JSON body posted to it (or never answers)."""

    def __init__(self, *, hang: bool = False) -> None:
        self.messages: list[dict[str, Any]] = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if hang:
                    receiver.release.wait(60)
                    return
                receiver.messages.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"json://notify:{SECRET}@127.0.0.1:{self.port}/hook"

    def titles(self) -> list[str]:
        return [message["title"] for message in self.messages]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _config(
    directory: Path, http: int, ws: int, url: str, notify: str = "", *, trusted: bool = False
) -> GatewayConfig:
    auth = 'trusted_networks = ["127.0.0.0/8"]\n' if trusted else ""
    return GatewayConfig(
        directory,
        upstream_http_port=http,
        upstream_ws_port=ws,
        extra=(
            f'public_url = "https://cemm.example.org"\n'
            f'[auth]\ninitial_admin = "admin"\ninitial_admin_password = "{PASSWORD}"\n{auth}'
            "[auth.bruteforce]\nnever_ban = []\nfree_attempts = 3\nmax_delay = 0\n"
            "ban_after = 1000\n"
            f"[notify]\nurls = [{json.dumps(url)}]\n{notify}"
        ),
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def _arrived(receiver: Receiver, title: str, timeout: float = 10.0) -> dict[str, Any]:
    """The first message whose title is ``title`` (or ``title (N times)``: folded)."""

    def found() -> list[dict[str, Any]]:
        return [m for m in receiver.messages if m["title"].split(" (")[0] == title]

    wait_for(lambda: bool(found()), f"{title!r} among {receiver.titles()}", timeout)
    return found()[0]


def _login(config: GatewayConfig, password: str, client: httpx.Client) -> int:
    page = client.get(config.url("/.gateway/login"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    data = {"username": "admin", "password": password, "next": "/", "csrf_token": token}
    return client.post(config.url("/.gateway/login"), data=data).status_code


def test_each_event_arrives_once_within_seconds(tmp_path: Path, receiver: Receiver) -> None:
    simulator = SimulatorThread()
    config = _config(tmp_path, simulator.http_port, simulator.ws_port, receiver.url)
    gateway = GatewayProcess(config)
    try:
        started = _arrived(receiver, "Gateway started")
        assert started["message"].endswith(f"https://cemm.example.org:{config.admin_port}/")
        assert (
            cli(
                "user",
                "add",
                "bert",
                "--role",
                "user",
                "--password-stdin",
                input="a-long-password-123\n",
                config=config.path,
            ).returncode
            == 0
        )
        added = _arrived(receiver, "New user")
        assert "added the user bert (user)." in added["message"]
        assert cli("allow", "add", "203.0.113.7", config=config.path).returncode == 0
        assert "203.0.113.7" in _arrived(receiver, "Allowlist changed")["message"]
        with httpx.Client(timeout=10) as phone, httpx.Client(timeout=10) as laptop:
            assert _login(config, PASSWORD, phone) == 303  # the first device: not news
            assert _login(config, PASSWORD, laptop) == 303
            new_device = _arrived(receiver, "Login from a new device")
            assert "admin logged in from a new device" in new_device["message"]
            assert "From: 127.0.0.1" in new_device["message"]
        with httpx.Client(timeout=10) as stranger:
            for _ in range(10):
                assert _login(config, "wrong password", stranger) in (200, 401, 403, 429)
        burst = _arrived(receiver, "Failed logins")
        assert "4 failed logins for" in burst["message"]
        time.sleep(3)  # anything else would have come by now
        titles = receiver.titles()
        for title in (
            "Gateway started",
            "New user",
            "Allowlist changed",
            "Login from a new device",
        ):
            assert titles.count(title) == 1, titles
        # Two bursts (the account, the address) of one kind: one message.
        assert [t for t in titles if t.startswith("Failed logins")] == ["Failed logins (2 times)"]
        assert SECRET not in gateway.log()
    finally:
        gateway.close()
        simulator.close()


@pytest.mark.parametrize("kind", ["dead", "hanging"])
def test_a_dead_or_hanging_receiver_costs_neither_memory_nor_proxying(
    tmp_path: Path, kind: str
) -> None:
    hanging = Receiver(hang=True) if kind == "hanging" else None
    url = hanging.url if hanging else f"json://notify:{SECRET}@127.0.0.1:{free_port()}/hook"
    simulator = SimulatorThread()
    config = _config(tmp_path, simulator.http_port, simulator.ws_port, url, trusted=True)
    gateway = GatewayProcess(config)
    try:
        before = gateway.rss
        with httpx.Client(timeout=10) as client:
            for _ in range(100):
                _login(config, "wrong password", client)
            began = time.monotonic()
            for _ in range(50):
                assert client.get(config.url("/api/v1/public/cemm")).status_code == 200
            assert time.monotonic() - began < 10
        assert gateway.rss - before < 50 * 1024 * 1024
        if kind == "dead":
            wait_for(lambda: "not delivered to json://•••" in gateway.log(), "a warning", 15)
        assert SECRET not in gateway.log()
    finally:
        gateway.close()
        simulator.close()
        if hanging:
            hanging.close()


def test_cemm_down_and_up_from_a_killed_simulator(tmp_path: Path, receiver: Receiver) -> None:
    cemm = SimulatorProcess(tmp_path / "simulator.log")
    config = _config(
        tmp_path / "gw", cemm.http_port, cemm.ws_port, receiver.url, "cemm_down_after = 2\n"
    )
    gateway = GatewayProcess(config, env={"CEMM_GATEWAY_UPSTREAM__HEALTH_INTERVAL": "1"})
    try:
        _arrived(receiver, "Gateway started")
        time.sleep(2)
        cemm.kill()
        down = _arrived(receiver, "CEMM not answering", timeout=20)
        assert "The CEMM has not answered for" in down["message"]
        cemm.start()
        up = _arrived(receiver, "CEMM answers again", timeout=20)
        assert "The CEMM answers again after" in up["message"]
        assert receiver.titles().count("CEMM not answering") == 1
    finally:
        gateway.close()
        cemm.close()


def test_clock_drift_from_a_simulator_with_a_skewed_clock(
    tmp_path: Path, receiver: Receiver
) -> None:
    simulator = SimulatorThread(clock_skew=600.0)
    config = _config(tmp_path, simulator.http_port, simulator.ws_port, receiver.url)
    gateway = GatewayProcess(config, env={"CEMM_GATEWAY_UPSTREAM__HEALTH_INTERVAL": "1"})
    try:
        drift = _arrived(receiver, "CEMM clock wrong", timeout=20)
        assert "s off the gateway's (threshold 30.0 s)" in drift["message"]
    finally:
        gateway.close()
        simulator.close()


def test_cli_sends_a_test_message_and_masks_the_receiver(
    tmp_path: Path, receiver: Receiver
) -> None:
    config = _config(tmp_path, 1, 1, receiver.url)
    config.write()
    sent = cli("notify", "test", config=config.path)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout == "Sent a test message to json://•••.\n"
    assert receiver.titles() == ["Test message"]
    assert "A test message from the gateway, sent by cli:" in receiver.messages[0]["message"]
    dead = _config(tmp_path / "dead", 1, 1, f"json://notify:{SECRET}@127.0.0.1:{free_port()}/")
    dead.write()
    failed = cli("notify", "test", config=dead.path)
    assert failed.returncode == 1
    assert "error: a receiver did not take the test message (json://•••)" in failed.stderr
    assert SECRET not in failed.stderr + failed.stdout


def test_messages_come_in_the_homes_language(tmp_path: Path, receiver: Receiver) -> None:
    simulator = SimulatorThread()
    config = _config(
        tmp_path, simulator.http_port, simulator.ws_port, receiver.url, '[ui]\nlanguage = "nl"\n'
    )
    gateway = GatewayProcess(config)
    try:
        started = _arrived(receiver, "Gateway gestart")
        assert started["message"].startswith("De gateway (versie ")
        assert "Gateway started" not in receiver.titles()
    finally:
        gateway.close()
        simulator.close()
