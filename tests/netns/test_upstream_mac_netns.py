"""Following the CEMM by its MAC across address changes, on a real L2 segment (root only).

Topology (tests/support/netns.py, root mode): the gateway runs in the test's own (root)
namespace with ``[upstream] mac`` and the lab subnet as ``probe_subnet``; its neighbour
table is the root namespace's, which holds the lab segment. Two lab hosts:

- ``cemm``: the simulator (``python -m gateway.simulator``, listening on every address of
  its namespace, as a real device does) with MAC A, on ``eth0`` whose link-layer address
  is A too, like a real CEMM;
- ``intruder``: a second simulator with MAC B that records what reaches it.

A client in the test process keeps using the gateway (loopback) the whole time.

1. The CEMM moves from X to Y, and the intruder takes X at once; the gateway's neighbour
   entry for X is dropped, so the next packet to X reaches the intruder (the worst case:
   the address was reassigned before the gateway noticed anything). The gateway must find
   the CEMM at Y within 15 s, and the intruder must receive nothing of the client's
   traffic - only the gateway's identity check (``GET /api/v1/public/cemm``).
2. The CEMM moves again, Y to Z, quietly (nobody takes Y, the neighbour entry stays):
   found again within 15 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from gateway.services import audit
from gateway.store import db
from tests.support.gateway import GatewayConfig, GatewayProcess
from tests.support.netns import Host, Lab, require_netns

pytestmark = [pytest.mark.root, pytest.mark.timeout(180)]

SCRAPE_TOKEN = "netns-scrape-token-0123456789"
MAC_A = "80:1F:12:47:06:B0"
MAC_B = "02:00:5E:10:00:0B"
REFIND_LIMIT = 15.0

# The intruder: the same simulator, writing what reached it to a file every 0.2 s.
RECORDING_SIMULATOR = r"""
import asyncio, json, os, sys
from gateway.simulator import SimulatorConfig, start_simulator

async def main():
    sim = await start_simulator(
        SimulatorConfig(host="0.0.0.0", http_port=80, ws_port=8090, mac=sys.argv[1])
    )
    out = sys.argv[2]
    print("ready", flush=True)
    while True:
        seen = [
            {"method": r.method, "path": r.path, "headers": dict(r.headers),
             "client": r.client, "websocket": r.websocket}
            for r in sim.requests
        ]
        with open(out + ".tmp", "w") as file:
            json.dump(seen, file)
        os.replace(out + ".tmp", out)
        await asyncio.sleep(0.2)

asyncio.run(main())
"""


@dataclass
class Client:
    """A browser-like client: keeps asking the gateway for the CEMM's device document."""

    url: str
    results: list[tuple[float, int, str | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=3.0) as client:
            while not self._stop.is_set():
                try:
                    response = client.get(self.url)
                    mac = response.json().get("mac") if response.status_code == 200 else None
                    self.results.append((time.monotonic(), response.status_code, mac))
                except httpx.HTTPError as error:
                    self.results.append((time.monotonic(), 0, type(error).__name__))
                time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def first_ok_after(self, since: float) -> float | None:
        for at, status, mac in list(self.results):
            if at >= since and status == 200 and mac == MAC_A:
                return at
        return None


def _set_address(host: Host, old: str, new: str, prefix: int) -> None:
    # Old one first: deleting a primary address also deletes the secondaries of its subnet.
    host.run(["ip", "addr", "del", f"{old}/{prefix}", "dev", "eth0"])
    host.run(["ip", "addr", "add", f"{new}/{prefix}", "dev", "eth0"])


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def lab() -> Iterator[Lab]:
    require_netns()
    with Lab() as lab:
        yield lab


def test_gateway_follows_the_cemm_by_mac(lab: Lab, tmp_path: Path) -> None:
    prefix = lab.subnet_v4.prefixlen
    cemm = lab.add_host("cemm")
    intruder = lab.add_host("intruder")
    for host, mac in ((cemm, MAC_A), (intruder, MAC_B)):
        host.run(["ip", "link", "set", "dev", "eth0", "address", mac.lower()])
    x, y, z = cemm.v4, str(lab.subnet_v4[60]), str(lab.subnet_v4[61])

    cemm.popen(
        [sys.executable, "-m", "gateway.simulator", "--host", "0.0.0.0", "--http-port", "80",
         "--ws-port", "8090", "--mac", MAC_A],
        stdout=(tmp_path / "cemm.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    recording = tmp_path / "intruder.json"
    intruder.python_popen(
        RECORDING_SIMULATOR,
        MAC_B,
        str(recording),
        stdout=(tmp_path / "intruder.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    cemm.wait_tcp(x, 80)
    intruder.wait_tcp(intruder.v4, 80)

    config = GatewayConfig(
        tmp_path / "gw",
        upstream_http_port=80,
        upstream_ws_port=8090,
        upstream_host="",
        extra='[auth]\ntrusted_networks = ["127.0.0.0/8", "::1/128"]\n'
        f'[metrics]\nscrape_token = "{SCRAPE_TOKEN}"\n',
    )
    gateway = GatewayProcess(
        config,
        env={
            "CEMM_GATEWAY_UPSTREAM__MAC": MAC_A,
            "CEMM_GATEWAY_UPSTREAM__PROBE_SUBNET": str(lab.subnet_v4),
            "CEMM_GATEWAY_UPSTREAM__HEALTH_INTERVAL": "2",
        },
    )
    client = Client(config.url("/api/v1/public/cemm"))
    try:
        started = time.monotonic()
        _wait(
            lambda: httpx.get(client.url, timeout=3).status_code == 200,
            REFIND_LIMIT,
            "the first find (probe)",
        )
        first_find = time.monotonic() - started
        client.start()
        time.sleep(1.0)

        # 1. The CEMM moves X -> Y; the intruder takes X; the neighbour entry is gone.
        moved = time.monotonic()
        _set_address(cemm, x, y, prefix)
        _set_address(intruder, intruder.v4, x, prefix)
        assert lab.gateway_interface is not None  # the lab's own veth in this namespace
        subprocess.run(
            ["ip", "neigh", "del", x, "dev", lab.gateway_interface],
            check=False,
            capture_output=True,
            timeout=10,
        )
        found = _wait(lambda: client.first_ok_after(moved), REFIND_LIMIT + 5, "the CEMM at Y")
        refind_1 = found - moved
        time.sleep(2.0)  # the client keeps going at the new address

        # 2. A quiet move Y -> Z: nobody takes Y, the neighbour entry for Y stays.
        moved_again = time.monotonic()
        _set_address(cemm, y, z, prefix)
        found = _wait(lambda: client.first_ok_after(moved_again), REFIND_LIMIT + 5, "the CEMM at Z")
        refind_2 = found - moved_again
        time.sleep(1.0)
        client.stop()

        # The WebSocket port follows too.
        with connect(config.ws_url(), open_timeout=5) as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "reading"

        time.sleep(0.5)
        seen = json.loads(recording.read_text())
        # The details of /healthz, as a monitoring system with the scrape token reads them.
        status = httpx.get(
            config.url("/healthz", port="admin"),
            headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"},
            timeout=5,
        ).json()
        log = gateway.log()
        conn = db.connect(config.data_dir / "gateway.db")
        try:
            changes = [
                e.detail
                for e in reversed(audit.entries(conn))
                if e.event == "upstream.address_change"
            ]
            foreign = [
                e.detail for e in audit.entries(conn) if e.event == "upstream.foreign_device"
            ]
        finally:
            conn.close()
    except BaseException:
        print("gateway log:\n" + gateway.log()[-6000:])
        print("client:", client.results[-40:])
        raise
    finally:
        client.stop()
        gateway.close()

    print(
        f"\nfirst find {first_find:.1f} s; re-found after move with intruder {refind_1:.1f} s; "
        f"after quiet move {refind_2:.1f} s; intruder saw {len(seen)} request(s); "
        f"link-layer refusals {status['denials'].get('upstream_link_mismatch', 0)}"
    )
    print("\n".join(line for line in log.splitlines() if "upstream" in line or "refused" in line))
    assert refind_1 < REFIND_LIMIT, refind_1
    assert refind_2 < REFIND_LIMIT, refind_2
    # The client never got an answer from the intruder ...
    assert all(mac in (MAC_A, None) or status == 0 for _, status, mac in client.results)
    assert not any(mac == MAC_B for _, _, mac in client.results)
    # ... and the intruder saw nothing but identity checks (no client request, no WebSocket).
    for request in seen:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert request["method"] == "GET" and request["path"] == "/api/v1/public/cemm", request
        assert headers.get("user-agent") == "cemm-gateway-monitor", request
        assert "x-forwarded-for" not in headers, request
        assert not request["websocket"], request
    assert changes == [
        {"old": x, "new": y, "mac": MAC_A},
        {"old": y, "new": z, "mac": MAC_A},
    ]
    if seen:
        assert foreign and foreign[0]["reported_mac"] == MAC_B
    assert status["upstream"]["address"] == z
    assert status["upstream"]["address_changes"] == 2
    assert f"moved from {x} to {y}" in log and f"moved from {y} to {z}" in log
