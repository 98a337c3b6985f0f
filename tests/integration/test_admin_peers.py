"""The admin app's WireGuard peers: the page and the JSON API.

WireGuard off: over loopback against a normal gateway (empty state, 404 from the API).
WireGuard on: the gateway runs as root in a network namespace of its own (it creates its
interface there, never in this machine's namespace; the name is one of its own, since
wireguard-go's control socket is one file for every namespace), and a lab host makes the
HTTP calls, logged in through ``POST /.gateway/api/login``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.wireguard.keys import generate_private_key, public_key
from tests.support.admin import AdminEnv, admin_gateway, logged_in
from tests.support.gateway import ROOT
from tests.support.netns import Host, Lab, require_netns, wireguard_name

PASSWORD = "correct-horse-battery-staple"


# -- WireGuard off --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminEnv]:
    with admin_gateway(tmp_path_factory.mktemp("admin-peers")) as e:
        yield e


def test_wireguard_off_page_says_how_to_turn_it_on(env: AdminEnv) -> None:
    with logged_in(env.admin_url("")) as admin:
        page = admin.get("/peers")
        assert page.status_code == 200
        assert "data-wireguard-off" in page.text
        assert "set [wireguard] enabled = true and endpoint in the configuration" in page.text
        assert '<a href="/peers" aria-current="page">Peers</a>' in page.text
        assert '<a href="/peers">Peers</a>' in admin.get("/").text


def test_wireguard_off_api_answers_404(env: AdminEnv) -> None:
    with logged_in(env.admin_url("")) as admin:
        calls = [
            admin.get("/api/peers"),
            admin.post("/api/peers", json={"name": "phone"}),
            admin.patch("/api/peers/phone", json={"enabled": False}),
            admin.post("/api/peers/phone/rotate"),
            admin.post("/api/peers/phone/link"),
            admin.delete("/api/peers/phone"),
        ]
        for response in calls:
            assert response.status_code == 404, response.request.url
            assert response.json()["error"] == "not_found"
            assert "WireGuard is off" in response.json()["detail"]
        paths = admin.get("/openapi.json").json()["paths"]
        assert {"get", "post"} <= set(paths["/api/peers"])
        assert {"patch", "delete"} <= set(paths["/api/peers/{name}"])
        assert "post" in paths["/api/peers/{name}/rotate"]
        assert "post" in paths["/api/peers/{name}/link"]
        # Without the CSRF header a change is refused before anything else.
        admin.headers.pop("X-CSRF-Token")
        assert admin.post("/api/peers", json={"name": "phone"}).status_code == 403


# -- WireGuard on: in a namespace of its own ----------------------------------------------
# Runs on a lab host: every admin call, its observations answered as JSON on stdout.
CLIENT = r"""
import json, re, sys, httpx
admin_base, web_base, password, own_key = sys.argv[1:5]
seen = {}
admin = httpx.Client(base_url=admin_base, timeout=10)
login = admin.post("/.gateway/api/login", json={"username": "admin", "password": password})
assert login.status_code == 200, login.text
admin.headers["X-CSRF-Token"] = login.json()["csrf_token"]

def answer(response):
    try:
        body = response.json()
    except ValueError:
        body = None
    return {"status": response.status_code, "body": body}

seen["empty"] = answer(admin.get("/api/peers"))
seen["add"] = answer(admin.post("/api/peers", json={"name": "anna phone", "trusted": True}))
seen["add_again"] = answer(admin.post("/api/peers", json={"name": "anna phone"}))
seen["add_bad_name"] = answer(admin.post("/api/peers", json={"name": "a/b"}))
seen["add_no_user"] = answer(admin.post("/api/peers", json={"name": "x", "user": "nobody"}))
seen["add_own"] = answer(admin.post(
    "/api/peers", json={"name": "laptop", "public_key": own_key, "expires": "7d"}))
seen["add_same_key"] = answer(admin.post(
    "/api/peers", json={"name": "laptop2", "public_key": own_key}))
seen["list"] = answer(admin.get("/api/peers"))
seen["disable"] = answer(admin.patch("/api/peers/anna%20phone", json={"enabled": False}))
seen["untrust"] = answer(admin.patch("/api/peers/anna%20phone", json={"trusted": False}))
seen["change_missing"] = answer(admin.patch("/api/peers/nobody", json={"enabled": True}))
seen["rotate"] = answer(admin.post("/api/peers/anna%20phone/rotate"))
seen["link"] = answer(admin.post("/api/peers/anna%20phone/link"))
seen["link_own"] = answer(admin.post("/api/peers/laptop/link"))
url = seen["link"]["body"]["url"]
first = httpx.get(url, timeout=10)
second = httpx.get(url, timeout=10)
rotated_key_line = seen["rotate"]["body"]["config"].split("\n")[1]
seen["link_first"] = {"status": first.status_code, "svg": "<svg" in first.text,
                      "rotated_config": rotated_key_line in first.text}
seen["link_second"] = second.status_code
seen["status"] = answer(admin.get("/api/status"))
seen["audit"] = sorted({e["event"] for e in admin.get(
    "/api/audit", params={"limit": 100}).json()["entries"] if e["event"].startswith("peer.")})
seen["delete"] = answer(admin.delete("/api/peers/laptop"))
seen["delete_again"] = answer(admin.delete("/api/peers/laptop"))

# The pages: a form with the session's CSRF token.
page = admin.get("/peers")
token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
seen["page"] = {"status": page.status_code, "text": page.text}
def form(**fields):
    response = admin.post("/peers", data={"csrf_token": token, **fields})
    return {"status": response.status_code, "text": response.text,
            "cache": response.headers.get("cache-control")}
seen["page_add"] = form(action="add", name="tablet", expires="1d", user="admin")
seen["page_add_bad"] = form(action="add", name="bad/name", expires="never")
seen["page_link"] = form(action="link", name="tablet")
seen["page_remove_ask"] = form(action="remove", name="tablet")
seen["page_remove"] = form(action="remove", name="tablet", confirmed="1")
seen["page_no_csrf"] = admin.post("/peers", data={"action": "remove", "name": "anna phone",
                                                  "confirmed": "1"}).status_code
print(json.dumps(seen))
"""


def _start_gateway(lab: Lab, gateway: Host, directory: Path, interface: str) -> Path:
    config = directory / "gateway.toml"
    config.write_text(
        f'data_dir = "{directory / "data"}"\nreload_interval = 0.2\n'
        '[upstream]\nhost = "127.0.0.1"\nhttp_port = 9\nws_port = 10\n'
        '[listen]\nhost = ""\n'
        f'[allowlist]\ndefault_networks = ["{lab.subnet_v4}"]\n'
        f'admin_networks = ["{lab.subnet_v4}"]\n'
        '[wireguard]\nenabled = true\nendpoint = "vpn.example.net:51820"\n'
        f'interface = "{interface}"\n'
        f'[auth]\ninitial_admin_password = "{PASSWORD}"\n'
        "[auth.bruteforce]\nnever_ban = []\nfree_attempts = 1000\nban_after = 1000\n"
    )
    log = directory / "gateway.log"
    gateway.popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    try:
        gateway.wait_tcp(lab.gateway_address_v4, 8443, timeout=30)
    except Exception:
        pytest.fail(f"the gateway did not start:\n{log.read_text()[-3000:]}")
    return log


@pytest.mark.root
@pytest.mark.timeout(120)
def test_peers_page_and_api_with_wireguard_on(tmp_path: Path) -> None:
    require_netns()
    own_key = public_key(generate_private_key())
    with Lab(gateway_in_namespace=True) as lab:
        gateway = lab.gateway_host
        client = lab.add_host("admin")
        interface = wireguard_name()
        log = _start_gateway(lab, gateway, tmp_path, interface)
        address = lab.gateway_address_v4
        run = client.python(
            CLIENT,
            f"http://{address}:8443",
            f"http://{address}",
            PASSWORD,
            own_key,
            timeout=60,
            check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert run.returncode == 0, run.stderr[-3000:] + log.read_text()[-3000:]
    seen: dict[str, Any] = json.loads(run.stdout)

    assert seen["empty"] == {"status": 200, "body": []}
    added = seen["add"]
    assert added["status"] == 201
    peer, config = added["body"]["peer"], added["body"]["config"]
    assert peer["name"] == "anna phone" and peer["address_v4"] == "10.13.13.2"
    assert peer["trusted"] and peer["state"] == "enabled" and peer["config_available"]
    assert "PrivateKey = " in config and "Endpoint = vpn.example.net:51820" in config
    assert "AllowedIPs = 10.13.13.1/32" in config
    assert seen["add_again"]["status"] == 409
    assert "already a peer 'anna phone'" in seen["add_again"]["body"]["detail"]
    assert seen["add_bad_name"]["status"] == 422
    assert seen["add_no_user"]["status"] == 404
    own = seen["add_own"]["body"]
    assert seen["add_own"]["status"] == 201 and own["config"] is None
    assert own["peer"]["public_key"] == own_key and not own["peer"]["config_available"]
    assert own["peer"]["expires_at"] is not None
    assert seen["add_same_key"]["status"] == 409

    listed = {p["name"]: p for p in seen["list"]["body"]}
    assert set(listed) == {"anna phone", "laptop"}
    assert listed["laptop"]["latest_handshake"] is None and listed["laptop"]["rx_bytes"] == 0

    assert seen["disable"]["status"] == 200
    assert seen["disable"]["body"]["state"] == "disabled"
    assert seen["untrust"]["body"]["trusted"] is False
    assert seen["change_missing"]["status"] == 404

    rotated = seen["rotate"]["body"]
    assert seen["rotate"]["status"] == 200 and rotated["config"] != config
    assert rotated["peer"]["public_key"] != peer["public_key"]

    link = seen["link"]["body"]
    assert seen["link"]["status"] == 201 and link["path"].startswith("/.gateway/peer/")
    assert link["url"] == f"http://{address}{link['path']}"
    assert seen["link_first"] == {"status": 200, "svg": True, "rotated_config": True}
    assert seen["link_second"] == 404
    assert seen["link_own"]["status"] == 409

    vpn = seen["status"]["body"]["vpn"]
    assert vpn["interface"] == interface
    assert {p["name"] for p in vpn["peers"]} == {"anna phone", "laptop"}
    assert seen["audit"] == [
        "peer.add",
        "peer.disable",
        "peer.link",
        "peer.link_used",
        "peer.rotate",
        "peer.untrusted",
    ]
    assert seen["delete"]["status"] == 204 and seen["delete_again"]["status"] == 404

    page = seen["page"]
    assert page["status"] == 200 and 'data-peer="anna phone"' in page["text"]
    assert 'data-state="disabled"' in page["text"]
    added_page = seen["page_add"]
    assert added_page["status"] == 200 and added_page["cache"] == "no-store"
    assert 'data-peer-config="tablet"' in added_page["text"] and "<svg" in added_page["text"]
    assert 'href="data:application/octet-stream;base64,' in added_page["text"]
    assert 'download="tablet.conf"' in added_page["text"]
    assert seen["page_add_bad"]["status"] == 400
    assert "is not allowed" in seen["page_add_bad"]["text"]
    assert f"http://{address}/.gateway/peer/" in seen["page_link"]["text"]
    asked = seen["page_remove_ask"]
    assert asked["status"] == 200 and "Remove tablet?" in asked["text"]
    assert 'name="confirmed" value="1"' in asked["text"]
    assert "Removed tablet." in seen["page_remove"]["text"]
    assert 'data-peer="tablet"' not in seen["page_remove"]["text"]
    assert seen["page_no_csrf"] == 403
