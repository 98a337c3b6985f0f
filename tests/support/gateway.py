"""Running the simulator and the gateway for tests, the way a user runs them.

- :class:`SimulatorThread`: the CEMM simulator in a thread of the test process, so tests can
  read what reached the device (``sim.requests``) and stop or restart it.
- :class:`GatewayProcess`: ``cemm-gateway run --config FILE`` as a real process (signals,
  memory and exit codes are the real ones); waits for ``/healthz`` on the admin port.
- :class:`InProcessGateway`: the gateway in a thread of the test process, for tests that
  add an addon of their own (one at a time: mitmproxy's context is process-global).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from gateway.netutil import free_port
from gateway.simulator import Simulator, SimulatorConfig, start_simulator

ROOT = Path(__file__).resolve().parents[2]


class LoopThread:
    """An asyncio loop in a daemon thread; run coroutines on it from the test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run[T](self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


class SimulatorThread:
    def __init__(self, **config: Any) -> None:
        config.setdefault("http_port", 0)
        config.setdefault("ws_port", 0)
        self.config = config
        self._loop = LoopThread()
        self.sim: Simulator = self._loop.run(start_simulator(SimulatorConfig(**config)))
        self.http_port = self.sim.http_port
        self.ws_port = self.sim.ws_port

    def stop(self) -> None:
        self._loop.run(self.sim.stop())

    def restart(self) -> None:
        """Start again on the same ports (the device came back)."""
        config = {**self.config, "http_port": self.http_port, "ws_port": self.ws_port}
        deadline = time.monotonic() + 10
        while True:
            try:
                self.sim = self._loop.run(start_simulator(SimulatorConfig(**config)))
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self._loop.close()


@dataclass
class GatewayConfig:
    """A configuration file for one test gateway, on free loopback ports."""

    directory: Path
    upstream_http_port: int
    upstream_ws_port: int
    upstream_host: str = "127.0.0.1"
    listen_host: str = "127.0.0.1"
    http_port: int = field(default_factory=free_port)
    ws_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    extra: str = ""

    @property
    def path(self) -> Path:
        return self.directory / "gateway.toml"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    def write(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path.write_text(
            f'data_dir = "{self.data_dir}"\n'
            "reload_interval = 0.1\n"
            "[upstream]\n"
            f'host = "{self.upstream_host}"\n'
            f"http_port = {self.upstream_http_port}\n"
            f"ws_port = {self.upstream_ws_port}\n"
            "connect_timeout = 2.0\n"
            "[listen]\n"
            f'host = "{self.listen_host}"\n'
            f"http_port = {self.http_port}\n"
            f"ws_port = {self.ws_port}\n"
            f"admin_port = {self.admin_port}\n" + self.extra
        )
        return self.path

    def url(self, path: str = "/", *, port: str = "http", host: str | None = None) -> str:
        number = {"http": self.http_port, "ws": self.ws_port, "admin": self.admin_port}[port]
        shown = host or (
            self.listen_host if self.listen_host not in ("", "0.0.0.0") else "127.0.0.1"
        )
        shown = f"[{shown}]" if ":" in shown else shown
        return f"http://{shown}:{number}{path}"

    def ws_url(self, path: str = "/ws", *, port: str = "ws") -> str:
        return self.url(path, port=port).replace("http://", "ws://", 1)


def cli(
    *args: str, config: Path | None = None, input: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run ``cemm-gateway ARGS`` as a user would."""
    command = [sys.executable, "-m", "gateway", *args]
    if config is not None:
        command += ["--config", str(config)]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        input=input,
        timeout=timeout,
        cwd=ROOT,
        env=_clean_env(),
    )


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> float:
    """Poll ``condition`` until it holds; return how long that took, fail after ``timeout``.

    For changes the CLI commits to the database, which the running gateway picks up on its
    next poll (``reload_interval``): on a loaded machine that poll can come late.
    """
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def token_in_force(config: GatewayConfig, token: str, timeout: float = 10.0) -> None:
    """Wait until the running gateway knows an API token the CLI just made: a request with
    it is no longer 401 (the token's scope or access may still refuse it: 403)."""
    bearer = {"Authorization": f"Bearer {token}"}

    def known() -> bool:
        return httpx.get(config.url("/_sim/headers"), headers=bearer, timeout=5).status_code != 401

    wait_for(known, "the running gateway knows the new token", timeout)


def changed_at(data_dir: Path, event: str) -> float:
    """When the newest ``event`` was committed: the audit entry is written in the same
    transaction as the change, so deadlines ("closed within a second of the change") are
    measured from it rather than from a CLI command's start-up or exit."""
    conn = sqlite3.connect(data_dir / "gateway.db", timeout=10)
    try:
        row = conn.execute("SELECT max(at) FROM audit_log WHERE event = ?", (event,)).fetchone()
    finally:
        conn.close()
    assert row and row[0] is not None, f"no '{event}' in the audit log"
    return float(row[0])


def policy_reloads(log: Path) -> int:
    """How often the gateway writing ``log`` has reloaded its allowlist policy so far."""
    return log.read_text(errors="replace").count("policy reloaded (generation")


def wait_policy_reload(log: Path, before: int, timeout: float = 10.0) -> float:
    """Wait until the gateway has reloaded its policy after ``before`` reloads."""
    return wait_for(lambda: policy_reloads(log) > before, "the gateway reloads its policy", timeout)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CEMM_GATEWAY_")}


class GatewayProcess:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        env: dict[str, str] | None = None,
        wrapper: Sequence[str] = (),
        https: bool = False,
    ) -> None:
        config.write()
        self.config = config
        self.https = https
        self.log_path = config.directory / "gateway.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [*wrapper, sys.executable, "-m", "gateway", "run", "--config", str(config.path)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**_clean_env(), **(env or {})},
        )
        try:
            self.wait_ready()
        except BaseException:
            # No caller holds this object yet to close it: never leave the process behind.
            self.close()
            raise

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{self.log()}")
            try:
                url = self.config.url("/healthz", port="admin")
                if self.https:
                    url = url.replace("http://", "https://", 1)
                if httpx.get(url, timeout=1, verify=not self.https).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gateway did not become ready:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    @property
    def rss(self) -> int:
        return int(psutil.Process(self.process.pid).memory_info().rss)

    def terminate(self, timeout: float = 10.0) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds it took)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        return code, time.monotonic() - started

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


class InProcessGateway:
    def __init__(self, config: GatewayConfig, *, extra_addons: Sequence[Any] = ()) -> None:
        from gateway.app import Gateway
        from gateway.settings import load_settings

        config.write()
        self.config = config
        self._loop = LoopThread()
        self.gateway = Gateway(load_settings(config.path), extra_addons=extra_addons)
        self._loop.run(self.gateway.start())

    def call[T](self, function: Callable[[], T]) -> T:
        async def call() -> T:
            return function()

        return self._loop.run(call())

    def close(self) -> None:
        try:
            self._loop.run(self.gateway.stop())
        finally:
            self._loop.close()
