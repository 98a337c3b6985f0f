"""Slow and oversized clients: 300 slowloris connections do not stop a normal client from
being served within a second; heads and bodies over the limits get 431/413, and nothing of
them reaches the CEMM - including a head that never ends."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import TRUSTED_LOOPBACK
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread

SLOW_CLIENTS = 300
MAX_BODY = 1024 * 1024
MAX_HEADER = 16384


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayConfig, GatewayProcess, SimulatorThread]]:
    simulator = SimulatorThread()
    config = GatewayConfig(
        tmp_path_factory.mktemp("slow") / "gw",
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=TRUSTED_LOOPBACK
        + f"[limits]\nmax_header_bytes = {MAX_HEADER}\nmax_request_body_bytes = {MAX_BODY}\n",
    )
    gateway = GatewayProcess(config)
    yield config, gateway, simulator
    gateway.close()
    simulator.close()


def _reached_device(simulator: SimulatorThread, marker: str) -> bool:
    return any(marker in r.path or marker in r.query for r in simulator.sim.requests)


def test_slowloris_does_not_starve_a_normal_client(env) -> None:
    config, gateway, _ = env
    slow: list[socket.socket] = []
    stop = threading.Event()

    def trickle() -> None:
        # One more header line per connection per second: a head that never ends.
        for _ in range(10):
            if stop.wait(1.0):
                return
            for sock in slow:
                try:
                    sock.send(b"X-Slow: 1\r\n")
                except OSError:
                    pass

    try:
        for _ in range(SLOW_CLIENTS):
            sock = socket.create_connection(("127.0.0.1", config.http_port), timeout=5)
            sock.send(b"GET /api/v1/public/cemm HTTP/1.1\r\nHost: cemm\r\n")
            slow.append(sock)
        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        timings = []
        for _ in range(8):
            started = time.monotonic()
            response = httpx.get(config.url("/api/v1/public/cemm"), timeout=5)
            timings.append(time.monotonic() - started)
            assert response.status_code == 200
            time.sleep(0.5)
        assert max(timings) < 1.0, timings
        assert gateway.process.poll() is None
    finally:
        stop.set()
        for sock in slow:
            sock.close()


def test_a_head_over_the_limit_gets_431(env) -> None:
    config, _, simulator = env
    marker = uuid.uuid4().hex
    response = httpx.get(
        config.url(f"/_sim/echo?{marker}"), headers={"X-Big": "a" * (MAX_HEADER + 100)}, timeout=5
    )
    assert response.status_code == 431
    assert "cemm-gateway" in response.text
    assert not _reached_device(simulator, marker)


def test_many_small_headers_over_the_limit_get_431(env) -> None:
    config, _, simulator = env
    marker = uuid.uuid4().hex
    headers = [(f"X-H{i}", "v" * 100) for i in range(200)]  # ~22 KB in 200 lines
    response = httpx.get(config.url(f"/_sim/echo?{marker}"), headers=headers, timeout=5)
    assert response.status_code == 431
    assert not _reached_device(simulator, marker)


def test_a_head_that_never_ends_gets_431_and_is_not_buffered(env) -> None:
    config, gateway, simulator = env
    marker = uuid.uuid4().hex
    before = gateway.rss
    with socket.create_connection(("127.0.0.1", config.http_port), timeout=5) as sock:
        sock.sendall(f"GET /_sim/echo?{marker} HTTP/1.1\r\nHost: cemm\r\nX-Endless: ".encode())
        sent = 0
        try:
            while sent < 64 * 1024 * 1024:  # bounded: what it may try to make us hold
                sock.sendall(b"a" * 65536)
                sent += 65536
        except OSError:
            pass  # cut off: expected
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    assert sent < 16 * 1024 * 1024, f"the gateway took {sent >> 20} MB of an endless head"
    assert gateway.rss - before < 20 * 1024 * 1024
    assert not _reached_device(simulator, marker)


def test_a_declared_body_over_the_limit_gets_413(env) -> None:
    config, _, simulator = env
    marker = uuid.uuid4().hex
    with socket.create_connection(("127.0.0.1", config.http_port), timeout=5) as sock:
        sock.sendall(
            f"POST /_sim/echo?{marker} HTTP/1.1\r\nHost: cemm\r\n"
            f"Content-Length: {MAX_BODY + 1}\r\n\r\n".encode()
            + b"x" * 1000
        )
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]
    assert not _reached_device(simulator, marker)


def test_a_body_within_the_limit_is_forwarded(env) -> None:
    config, _, simulator = env
    marker = uuid.uuid4().hex
    response = httpx.post(config.url(f"/_sim/echo?{marker}"), content=b"y" * MAX_BODY, timeout=10)
    assert response.status_code == 200
    assert response.json()["body_length"] == MAX_BODY
    assert _reached_device(simulator, marker)


def test_a_chunked_body_over_the_limit_is_refused(env) -> None:
    config, _, simulator = env
    marker = uuid.uuid4().hex

    def body() -> Iterator[bytes]:
        for _ in range(4 * MAX_BODY // 65536):
            yield b"z" * 65536

    try:
        response = httpx.post(config.url(f"/_sim/echo?{marker}"), content=body(), timeout=10)
        status = response.status_code
    except httpx.HTTPError:
        status = None  # cut off mid-body: acceptable
    assert status in (413, None)
    assert not _reached_device(simulator, marker) or status is None
