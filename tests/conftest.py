"""Fixtures shared by the integration tests: a simulated CEMM and a gateway in front of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread


@pytest.fixture
def simulator() -> Iterator[SimulatorThread]:
    sim = SimulatorThread()
    yield sim
    sim.close()


# The proxy-core tests are about proxying, not logins: loopback needs none there. The login
# tests (tests/integration/test_auth_*.py) use configurations without it. A trusted network
# is trusted only when it names the gateway by one of its own names: raw-socket probes
# send "Host: cemm", made one of them here.
TRUSTED_LOOPBACK = (
    '[auth]\ntrusted_networks = ["127.0.0.0/8", "::1/128"]\npublic_hostnames = ["cemm"]\n'
)


@pytest.fixture
def gateway_config(tmp_path: Path, simulator: SimulatorThread) -> GatewayConfig:
    return GatewayConfig(
        tmp_path / "gw",
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=TRUSTED_LOOPBACK,
    )


@pytest.fixture
def gateway(gateway_config: GatewayConfig) -> Iterator[GatewayProcess]:
    process = GatewayProcess(gateway_config)
    yield process
    process.close()
