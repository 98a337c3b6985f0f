"""``python -m gateway.simulator`` as a separate process: ready line, serving, signals."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

REPO = Path(__file__).resolve().parents[2]
READY = re.compile(
    r"^CEMM simulator: http://127\.0\.0\.1:(?P<http>\d+)/ "
    r"ws://127\.0\.0\.1:(?P<ws>\d+)(?P<path>/\S*) mac=(?P<mac>[0-9A-F:]{17})$"
)


def start(*args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        # -X dev shows ResourceWarnings and unawaited coroutines, so "no warnings" is checked.
        [sys.executable, "-X", "dev", "-m", "gateway.simulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )


def read_line(process: subprocess.Popen[str], timeout: float = 10) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            pytest.fail(f"no output within {timeout} s")
    return process.stdout.readline().rstrip("\n")


@pytest.fixture
def simulator() -> Iterator[tuple[subprocess.Popen[str], re.Match[str]]]:
    process = start("--http-port", "0", "--ws-port", "0", "--mac", "80-1f-12-47-06-b2")
    try:
        line = read_line(process)
        ready = READY.match(line)
        assert ready, f"unexpected ready line {line!r}"
        yield process, ready
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def stop(process: subprocess.Popen[str], signum: int) -> tuple[int, float, str]:
    started = time.monotonic()
    process.send_signal(signum)
    code = process.wait(5)
    assert process.stderr is not None
    return code, time.monotonic() - started, process.stderr.read()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serves_then_exits_0_on_a_signal(
    simulator: tuple[subprocess.Popen[str], re.Match[str]], signum: int
) -> None:
    process, ready = simulator
    assert ready["mac"] == "80:1F:12:47:06:B2"
    assert ready["path"] == "/ws"
    url = f"http://127.0.0.1:{ready['http']}/api/v1/public/cemm"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert json.load(response)["mac"] == "80:1F:12:47:06:B2"
    with connect(f"ws://127.0.0.1:{ready['ws']}/ws", open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=2))["seq"] == 0
        code, elapsed, errors = stop(process, signum)
    assert code == 0
    assert elapsed < 2
    assert errors == ""


def test_bad_mac_exits_2_with_an_example() -> None:
    process = start("--mac", "80:1F:12")
    _, errors = process.communicate(timeout=10)
    assert process.returncode == 2
    assert "not a MAC address; expected six hex pairs, for example 80:1F:12:47:06:B0" in errors


def test_busy_port_exits_1_and_names_the_option() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        process = start("--http-port", str(port), "--ws-port", "0")
        output, errors = process.communicate(timeout=10)
    assert process.returncode == 1
    assert output == ""
    assert f"127.0.0.1:{port}" in errors
    assert "--http-port" in errors
