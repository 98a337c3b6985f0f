"""What every test shares: no skip under CI, the ``root`` marker, derandomized hypothesis,
and the integration fixtures (a simulated CEMM and a gateway in front of it).

scripts/test runs the suite in one worker per core (pytest-xdist, ``--dist loadfile``): a
module's tests run together in one worker, in order, so a module-scoped gateway starts
once. Everything a test touches is its own (ports, data directories, network namespaces
named after the worker's PID, WireGuard interfaces named by
:func:`tests.support.netns.wireguard_name`, whose control sockets share one directory)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from tests.support.ci import cannot_run, in_ci
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread

# Property tests are deterministic: the same examples on every run and machine, none kept
# from an earlier run, and no deadline per example (how long one takes depends on what else
# runs on the machine, e.g. parallel workers; the suite's timeout still bounds a hung test).
# A test's own @settings(...) inherits these (conftest is imported before any test module).
settings.register_profile("cemm-gateway", derandomize=True, database=None, deadline=None)
settings.load_profile("cemm-gateway")


def _fail_if_skipped_in_ci(report: Any, where: str) -> None:
    """Under CI a skip is a failure, whoever raised it (a test, a fixture, collection)."""
    if report.skipped and in_ci():
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        if hasattr(report, "wasxfail"):
            reason = f"xfail: {report.wasxfail}"
            del report.wasxfail
        report.outcome = "failed"
        report.longrepr = f"skipped {where} under CI (a skip in CI hides a gap): {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    _fail_if_skipped_in_ci(report, f"during {report.when}")
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    report = yield
    _fail_if_skipped_in_ci(report, "at collection")
    return report


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.root``: the test needs root (namespaces, nftables, podman)."""
    if item.get_closest_marker("root") is not None and os.geteuid() != 0:
        cannot_run("needs root")


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
