"""What the fault tests share: a simulated CEMM in a process of its own, so it can be killed
with SIGKILL (a device losing power) and started again on the same ports."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.netutil import free_port
from tests.support.gateway import ROOT


class SimulatorProcess:
    def __init__(self, log: Path) -> None:
        self.http_port = free_port()
        self.ws_port = free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self, timeout: float = 15.0) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway.simulator",
                    "--http-port",
                    str(self.http_port),
                    "--ws-port",
                    str(self.ws_port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.http_port}/api/v1/public/cemm"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                # The port may still be held by the killed process's sockets: try again.
                time.sleep(0.2)
                return self.start(max(0.1, deadline - time.monotonic()))
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return None
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"simulator did not start:\n{self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: the device loses power mid-whatever."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def freeze(self) -> None:
        """SIGSTOP: the device hangs - powered, its kernel still accepting connections."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def cemm(tmp_path: Path) -> Iterator[SimulatorProcess]:
    sim = SimulatorProcess(tmp_path / "simulator.log")
    yield sim
    sim.close()
