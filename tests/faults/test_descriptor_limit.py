"""At the open-file limit the gateway stops accepting for a moment and writes one log line
(not a traceback per attempt), and serves again once connections are closed. The gateway
runs in a subprocess with a low ``RLIMIT_NOFILE`` (soft and hard, so it cannot raise it)."""

from __future__ import annotations

import errno
import socket
import sys
from pathlib import Path

import httpx

from tests.conftest import TRUSTED_LOOPBACK
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread, wait_for

OPEN_FILES = 160
HEADER_TIMEOUT = 4.0
CLIENTS = 400
LOW_LIMIT = [
    sys.executable,
    "-c",
    "import os, resource, sys; "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({OPEN_FILES}, {OPEN_FILES})); "
    "os.execv(sys.argv[1], sys.argv[1:])",
]


def test_at_the_descriptor_limit_one_line_and_service_resumes(tmp_path: Path) -> None:
    simulator = SimulatorThread()
    config = GatewayConfig(
        tmp_path / "gw",
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=TRUSTED_LOOPBACK,
    )
    gateway = GatewayProcess(
        config,
        wrapper=LOW_LIMIT,
        env={"CEMM_GATEWAY_LIMITS__HEADER_TIMEOUT": str(HEADER_TIMEOUT)},
    )
    clients: list[socket.socket] = []
    try:
        assert f"open-file limit {OPEN_FILES}" in gateway.log()
        for _ in range(CLIENTS):
            client = socket.socket()
            client.setblocking(False)
            code = client.connect_ex(("127.0.0.1", config.http_port))
            assert code in (0, errno.EINPROGRESS)
            clients.append(client)
        wait_for(lambda: "out of file descriptors" in gateway.log(), "the limit is reported", 10)
        # The idle connections are closed after header_timeout; the waiting ones are
        # accepted meanwhile and closed in turn; then there is room again.
        api = config.url("/api/v1/public/cemm")

        def served() -> bool:
            try:
                return httpx.get(api, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(served, "served again", timeout=4 * HEADER_TIMEOUT + 10)
        log = gateway.log()
        lines = log.count("\n")
        print(
            f"\nat the descriptor limit: {log.count('out of file descriptors')} line(s), "
            f"{lines} log lines in all"
        )
        assert log.count("out of file descriptors") == 1, log[-3000:]
        assert "Traceback" not in log
        assert "Too many open files\n" not in log
        assert lines < 40, log[-3000:]
        assert gateway.process.poll() is None
    finally:
        for client in clients:
            client.close()
        gateway.close()
        simulator.close()
