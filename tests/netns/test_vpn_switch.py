"""Turning WireGuard on and off from the admin app's Peers page, without a restart.

The gateway runs as root in a network namespace of its own (its WireGuard interface is made
there, never in this machine's namespace), with no ``[wireguard]`` in its file and ``[listen]
host`` set to its LAN address - so turning the tunnel on must also add listeners on the
tunnel's address. A lab host makes the HTTP calls. The interface's name comes from the
environment (``CEMM_GATEWAY_WIREGUARD__INTERFACE``), one of its own: wireguard-go's control
socket ``/run/wireguard/<name>.sock`` is one file for every network namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import ROOT
from tests.support.netns import Host, Lab, require_netns, wireguard_name

PASSWORD = "correct-horse-battery-staple"

CLIENT = r"""
import json, re, sys, httpx
admin_base, step = sys.argv[1:3]
admin = httpx.Client(base_url=admin_base, timeout=20)
login = admin.post("/.gateway/api/login", json={"username": "admin", "password": sys.argv[3]})
assert login.status_code == 200, login.text
admin.headers["X-CSRF-Token"] = login.json()["csrf_token"]
token = re.search(r'name="csrf_token" value="([^"]+)"', admin.get("/peers").text).group(1)
def form(**fields):
    response = admin.post("/peers", data={"csrf_token": token, **fields})
    return {"status": response.status_code, "text": response.text}
seen = {"before": admin.get("/api/peers").status_code}
if step == "on":
    seen["no_endpoint"] = form(action="vpn", enabled="1", endpoint="")
    seen["switch"] = form(action="vpn", enabled="1", endpoint="vpn.example.net:51820")
    seen["add"] = admin.post("/api/peers", json={"name": "anna phone"}).json()
else:
    seen["switch"] = form(action="vpn", endpoint="vpn.example.net:51820")
seen["after"] = admin.get("/api/peers").status_code
seen["status"] = admin.get("/api/status").json().get("vpn")
print(json.dumps(seen))
"""


def _start_gateway(lab: Lab, gateway: Host, directory: Path, interface: str) -> Path:
    config = directory / "gateway.toml"
    config.write_text(
        f'data_dir = "{directory / "data"}"\nreload_interval = 0.2\n'
        '[upstream]\nhost = "127.0.0.1"\nhttp_port = 9\nws_port = 10\n'
        f'[listen]\nhost = "{lab.gateway_address_v4}"\n'
        f'[allowlist]\ndefault_networks = ["{lab.subnet_v4}"]\n'
        f'admin_networks = ["{lab.subnet_v4}", "10.13.13.0/24"]\n'
        f'[auth]\ninitial_admin_password = "{PASSWORD}"\n'
        "[auth.bruteforce]\nnever_ban = []\nfree_attempts = 1000\nban_after = 1000\n"
    )
    log = directory / "gateway.log"
    gateway.popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "CEMM_GATEWAY_WIREGUARD__INTERFACE": interface},
        cwd=ROOT,
    )
    try:
        gateway.wait_tcp(lab.gateway_address_v4, 8443, timeout=30)
    except Exception:
        pytest.fail(f"the gateway did not start:\n{log.read_text()[-3000:]}")
    return log


def _client(lab: Lab, client: Host, log: Path, step: str) -> dict[str, Any]:
    run = client.python(
        CLIENT,
        f"http://{lab.gateway_address_v4}:8443",
        step,
        PASSWORD,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 0, run.stderr[-3000:] + log.read_text()[-3000:]
    found: dict[str, Any] = json.loads(run.stdout)
    return found


def _interface(gateway: Host, name: str) -> list[dict[str, Any]]:
    shown = gateway.run(["ip", "-j", "address", "show", "dev", name], check=False)
    found: list[dict[str, Any]] = json.loads(shown.stdout) if shown.returncode == 0 else []
    return found


@pytest.mark.root
@pytest.mark.timeout(150)
def test_wireguard_turned_on_and_off_from_the_peers_page(tmp_path: Path) -> None:
    require_netns()
    with Lab(gateway_in_namespace=True) as lab:
        gateway = lab.gateway_host
        client = lab.add_host("admin")
        interface = wireguard_name()
        log = _start_gateway(lab, gateway, tmp_path, interface)
        assert _interface(gateway, interface) == []

        on = _client(lab, client, log, "on")
        assert on["before"] == 404
        assert on["no_endpoint"]["status"] == 400
        assert "needs endpoint" in on["no_endpoint"]["text"]
        assert on["switch"]["status"] == 200, on["switch"]["text"][-2000:]
        assert "WireGuard is on; phones dial vpn.example.net:51820." in on["switch"]["text"]
        assert on["after"] == 200 and on["status"]["interface"] == interface
        assert "Endpoint = vpn.example.net:51820" in on["add"]["config"]
        addresses = [a["local"] for a in _interface(gateway, interface)[0]["addr_info"]]
        assert "10.13.13.1" in addresses
        # Listeners on the tunnel's address, added at run time ([listen] host is the LAN's).
        gateway.wait_tcp("10.13.13.1", 8443, timeout=10)
        gateway.wait_tcp("10.13.13.1", 80, timeout=10)

        off = _client(lab, client, log, "off")
        assert off["before"] == 200
        assert "WireGuard is off." in off["switch"]["text"] and off["after"] == 404
        assert _interface(gateway, interface) == []
        text = log.read_text()
    assert f"WireGuard interface {interface} is on (endpoint vpn.example.net:51820)" in text
    assert "Traceback" not in text
