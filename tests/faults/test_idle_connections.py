"""Connections that hold a descriptor without using it are closed: 2,000 connections that
send nothing are gone after ``[limits] header_timeout`` (10 s by default), a kept-alive
connection after ``[limits] idle_timeout``; an open WebSocket is not idle."""

from __future__ import annotations

import json
import resource
import socket
import time
from collections.abc import Iterator

import psutil
import pytest
from websockets.sync.client import connect

from tests.conftest import TRUSTED_LOOPBACK
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread, wait_for

IDLE_CLIENTS = 2000
HEADER_TIMEOUT = 10.0  # the default
IDLE_TIMEOUT = 2.0
MARGIN = 5.0  # a loaded test machine


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    simulator = SimulatorThread(interval=0.1)
    config = GatewayConfig(
        tmp_path_factory.mktemp("idle") / "gw",
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=TRUSTED_LOOPBACK,
    )
    gateway = GatewayProcess(config, env={"CEMM_GATEWAY_LIMITS__IDLE_TIMEOUT": str(IDLE_TIMEOUT)})
    yield gateway
    gateway.close()
    simulator.close()


def _descriptors(gateway: GatewayProcess) -> int:
    return int(psutil.Process(gateway.process.pid).num_fds())


@pytest.fixture
def room_for_clients() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = IDLE_CLIENTS + 500
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the open-file limit {hard} is too low for {IDLE_CLIENTS} clients")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_connections_that_send_nothing_are_closed(
    env: GatewayProcess, room_for_clients: None
) -> None:
    gateway = env
    before = _descriptors(gateway)
    clients: list[socket.socket] = []
    try:
        opened_at = time.monotonic()
        peak = before
        for number in range(IDLE_CLIENTS):
            clients.append(
                socket.create_connection(("127.0.0.1", gateway.config.http_port), timeout=10)
            )
            if number % 100 == 0:
                peak = max(peak, _descriptors(gateway))
        opened = time.monotonic() - opened_at
        peak = max(peak, _descriptors(gateway))
        # Held open (accepted, and not closed yet) while the clients connected.
        assert peak > before + min(IDLE_CLIENTS, 500), peak
        # Closed from header_timeout after each connected (the last connected last).
        wait_for(
            lambda: _descriptors(gateway) <= before + 5,
            "the idle connections are closed",
            timeout=opened + HEADER_TIMEOUT + MARGIN,
        )
        after = _descriptors(gateway)
        print(
            f"\n{IDLE_CLIENTS} idle connections (opened in {opened:.1f} s): gateway descriptors "
            f"{before} before, {peak} at the peak, {after} "
            f"{time.monotonic() - opened_at:.1f} s after the first connected"
        )
        # Every client learns its connection is closed (EOF, no answer).
        for client in clients[:50]:
            client.settimeout(5)
            assert client.recv(1024) == b""
    finally:
        for client in clients:
            client.close()
    assert gateway.process.poll() is None


def test_a_kept_alive_connection_is_closed_after_the_idle_timeout(env: GatewayProcess) -> None:
    with socket.create_connection(("127.0.0.1", env.config.http_port), timeout=10) as sock:
        sock.sendall(b"GET /api/v1/public/cemm HTTP/1.1\r\nHost: cemm\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        answered_at = time.monotonic()
        assert answer.startswith(b"HTTP/1.1 200")
        sock.settimeout(IDLE_TIMEOUT + MARGIN)
        while sock.recv(65536):  # the rest of the body, then the close
            pass
        idle = time.monotonic() - answered_at
    print(f"\nkept-alive connection closed {idle:.2f} s after its answer")
    assert IDLE_TIMEOUT - 0.2 <= idle < IDLE_TIMEOUT + MARGIN


def test_an_open_websocket_is_not_idle(env: GatewayProcess) -> None:
    with connect(env.config.ws_url(), open_timeout=5) as ws:
        until = time.monotonic() + 3 * IDLE_TIMEOUT
        while time.monotonic() < until:
            assert json.loads(ws.recv(timeout=3))["type"] == "reading"
