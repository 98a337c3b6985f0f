"""The CEMM hangs (SIGSTOP: powered, its kernel still accepting connections, nothing
answering): requests get the gateway's 504 after ``[upstream] response_timeout``, a relayed
WebSocket is closed with 1011 after two ping intervals of silence, descriptors do not pile
up, and everything works again when the device does. A WebSocket on which the CEMM is
silent but alive (it answers pings) stays open."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import TRUSTED_LOOPBACK
from tests.faults.conftest import SimulatorProcess
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread, wait_for

RESPONSE_TIMEOUT = 2.0
PING_INTERVAL = 1.0
# Deadlines are checked every quarter of the smaller timeout; the rest is a margin for a
# loaded test machine.
MARGIN = 3.0
ENV = {
    "CEMM_GATEWAY_UPSTREAM__RESPONSE_TIMEOUT": str(RESPONSE_TIMEOUT),
    "CEMM_GATEWAY_UPSTREAM__WEBSOCKET_PING_INTERVAL": str(PING_INTERVAL),
}


def _gateway(tmp_path: Path, http_port: int, ws_port: int) -> GatewayProcess:
    config = GatewayConfig(
        tmp_path / "gw",
        upstream_http_port=http_port,
        upstream_ws_port=ws_port,
        extra=TRUSTED_LOOPBACK,
    )
    return GatewayProcess(config, env=ENV)


def _descriptors(gateway: GatewayProcess) -> int:
    return int(psutil.Process(gateway.process.pid).num_fds())


def test_a_frozen_cemm_is_answered_for_and_its_websocket_closed(
    tmp_path: Path, cemm: SimulatorProcess
) -> None:
    gateway = _gateway(tmp_path, cemm.http_port, cemm.ws_port)
    api = gateway.config.url("/api/v1/public/cemm")
    try:
        assert httpx.get(api, timeout=5).status_code == 200
        before = _descriptors(gateway)
        with connect(gateway.config.ws_url(), open_timeout=5) as ws:
            assert json.loads(ws.recv(timeout=3))["type"] == "reading"
            cemm.freeze()
            frozen_at = time.monotonic()

            answers: list[tuple[int, float, str]] = []

            def request() -> None:
                started = time.monotonic()
                response = httpx.get(api, timeout=30)
                answers.append((response.status_code, time.monotonic() - started, response.text))

            threads = [threading.Thread(target=request) for _ in range(20)]
            for thread in threads:
                thread.start()
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=30)
            ws_closed_after = time.monotonic() - frozen_at
            for thread in threads:
                thread.join(30)
        assert len(answers) == 20
        slowest = max(took for _, took, _ in answers)
        print(
            f"\nfrozen CEMM: requests answered 504 after {min(t for _, t, _ in answers):.2f}-"
            f"{slowest:.2f} s (response_timeout {RESPONSE_TIMEOUT:g} s); WebSocket closed "
            f"{ws_closed_after:.2f} s after the freeze (ping interval {PING_INTERVAL:g} s)"
        )
        for status, took, text in answers:
            assert status == 504
            assert "cemm-gateway" in text and "mitmproxy" not in text.lower()
            assert RESPONSE_TIMEOUT - 0.1 <= took < RESPONSE_TIMEOUT + MARGIN
        assert closed.value.rcvd is not None, "dropped without a close frame"
        assert closed.value.rcvd.code == 1011
        assert ws_closed_after < 2 * PING_INTERVAL + MARGIN
        # Nothing piles up: the frozen CEMM's sockets are closed with the clients'.
        wait_for(lambda: _descriptors(gateway) <= before + 2, "descriptors back", timeout=10)

        cemm.thaw()
        wait_for(lambda: httpx.get(api, timeout=10).status_code == 200, "served again")
        with connect(gateway.config.ws_url(), open_timeout=5) as ws:
            assert json.loads(ws.recv(timeout=3))["type"] == "reading"
        log = gateway.log()
        assert log.count("the CEMM is not answering in time") == 1, log[-3000:]
        assert "Traceback" not in log
    finally:
        cemm.thaw()
        gateway.close()


def test_a_silent_websocket_whose_cemm_answers_pings_stays_open(tmp_path: Path) -> None:
    # A reading once a minute: the socket is silent, the device is not frozen.
    simulator = SimulatorThread(interval=60.0)
    gateway = _gateway(tmp_path, simulator.http_port, simulator.ws_port)
    try:
        with connect(gateway.config.ws_url(), open_timeout=5) as ws:
            json.loads(ws.recv(timeout=3))  # the first reading comes at once
            # Without the CEMM's pongs the gateway would close it after 2 s of silence.
            with pytest.raises(TimeoutError):
                ws.recv(timeout=6 * PING_INTERVAL)
            ws.ping().wait(5)  # still open, both ways
    finally:
        gateway.close()
        simulator.close()
