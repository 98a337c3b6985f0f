"""The CEMM loses power mid-stream and comes back: the gateway answers for it meanwhile and
serves again afterwards, without being restarted itself."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.conftest import TRUSTED_LOOPBACK
from tests.faults.conftest import SimulatorProcess
from tests.support.gateway import GatewayConfig, GatewayProcess

BIG = 100 * 1024 * 1024  # the most the simulator streams


def _gateway(tmp_path: Path, cemm: SimulatorProcess) -> GatewayProcess:
    return GatewayProcess(
        GatewayConfig(
            tmp_path / "gw",
            upstream_http_port=cemm.http_port,
            upstream_ws_port=cemm.ws_port,
            extra=TRUSTED_LOOPBACK,
        )
    )


def _served_again(gateway: GatewayProcess, timeout: float = 10.0) -> None:
    url = gateway.config.url("/api/v1/public/cemm")
    deadline = time.monotonic() + timeout
    while True:
        status = httpx.get(url, timeout=5).status_code
        if status == 200:
            return
        assert time.monotonic() < deadline, f"still {status} {timeout} s after the restart"
        time.sleep(0.2)


def _assert_gateway_page(response: httpx.Response) -> None:
    assert response.status_code in (502, 503, 504), response.status_code
    assert "cemm-gateway" in response.text
    assert "mitmproxy" not in response.text.lower()
    assert "mitmproxy" not in response.headers.get("server", "").lower()


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_killed_during_a_large_streamed_response(
    tmp_path: Path, cemm: SimulatorProcess, framing: str
) -> None:
    gateway = _gateway(tmp_path, cemm)
    try:
        query = "?sized=1" if framing == "content-length" else ""
        url = gateway.config.url(f"/_sim/bytes/{BIG}{query}")
        received = 0
        with httpx.stream("GET", url, timeout=10) as response:
            assert response.status_code == 200
            stream = response.iter_raw(65536)
            while received < 2 * 1024 * 1024:
                received += len(next(stream))
            cemm.kill()
            # The client must learn that the body is cut short: a clean end here would be
            # a silently truncated download.
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                for chunk in stream:
                    received += len(chunk)
        assert received < BIG

        # While the CEMM is down, the gateway answers for it with its own page.
        _assert_gateway_page(httpx.get(gateway.config.url("/api/v1/public/cemm"), timeout=10))

        cemm.start()
        _served_again(gateway)
        assert gateway.process.poll() is None
    finally:
        gateway.close()


def test_killed_during_an_open_websocket(tmp_path: Path, cemm: SimulatorProcess) -> None:
    gateway = _gateway(tmp_path, cemm)
    try:
        with connect(gateway.config.ws_url(), open_timeout=5) as ws:
            assert json.loads(ws.recv(timeout=3))["type"] == "reading"
            cemm.kill()
            started = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=5)
            assert time.monotonic() - started < 5
        # A close frame from the gateway, not a dropped TCP connection, and one that says the
        # far side failed (1011), not that all is well (1000). The CEMM's page reconnects
        # on any close.
        assert closed.value.rcvd is not None, "the gateway dropped the socket without a close"
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
            1011,
            "upstream connection lost",
        ), closed.value.rcvd

        with pytest.raises(InvalidStatus) as refused:
            connect(gateway.config.ws_url(), open_timeout=10)
        assert refused.value.response.status_code in (502, 503)

        cemm.start()
        _served_again(gateway)
        with connect(gateway.config.ws_url(), open_timeout=5) as ws:
            assert json.loads(ws.recv(timeout=3))["type"] == "reading"
        assert gateway.process.poll() is None
    finally:
        gateway.close()
