"""The allowlist with real, distinct client addresses (network namespaces, root only).

Hosts in the lab (see tests/support/netns.py) connect to a gateway in the test's own
namespace over real TCP:
- A: its IPv4 address is on the allowlist (and in admin_networks); its IPv6 address is not.
- B: its IPv6 address is on the allowlist; its IPv4 address is not.
- C: nothing of it is allowed.
- P: a trusted reverse proxy (allowed, and listed in trusted_proxies).
The defaults are narrowed to loopback so that every lab address is decided by the test.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.gateway import (
    GatewayConfig,
    GatewayProcess,
    SimulatorThread,
    changed_at,
    cli,
    policy_reloads,
    wait_policy_reload,
)
from tests.support.netns import Host, Lab, require_netns

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

# Connects, sends an HTTP request or a TLS ClientHello, and reports every byte it got back.
PROBE = r"""
import socket, ssl, sys
host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sock = socket.create_connection((host, port), timeout=3)
if mode == "http":
    sock.sendall(b"GET /api/v1/public/cemm HTTP/1.1\r\nHost: gateway\r\n\r\n")
else:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="gateway.test")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    sock.sendall(outgoing.read())
data, error = b"", ""
try:
    while len(data) < 4096:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
except (ConnectionResetError, TimeoutError, socket.timeout) as exc:
    error = type(exc).__name__
print(len(data), data[:16].hex(), error)
"""

GET = r"""
import sys, httpx
headers = dict(h.split(": ", 1) for h in sys.argv[2:])
response = httpx.get(sys.argv[1], headers=headers, timeout=5, verify=False)
print(response.status_code)
print(response.text)
"""

WATCH_WEBSOCKET = r"""
import ssl, sys, time
from websockets.sync.client import connect
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
with connect(sys.argv[1], open_timeout=5, ssl=context) as ws:
    ws.recv(timeout=5)
    print("OPEN", time.time(), flush=True)
    try:
        while True:
            ws.recv(timeout=60)
    except Exception as exc:
        print("CLOSED", time.time(), type(exc).__name__, flush=True)
"""


@dataclass
class Env:
    lab: Lab
    a: Host
    b: Host
    c: Host
    p: Host
    config: GatewayConfig
    gateway: GatewayProcess
    simulator: SimulatorThread

    def url(self, host: str, port: str = "http", path: str = "/api/v1/public/cemm") -> str:
        number = {
            "http": self.config.http_port,
            "ws": self.config.ws_port,
            "admin": self.config.admin_port,
        }[port]
        shown = f"[{host}]" if ":" in host else host
        return f"https://{shown}:{number}{path}"

    def probe(self, client: Host, address: str, port: int, mode: str) -> tuple[int, str, str]:
        out = client.python(PROBE, address, str(port), mode, timeout=15).stdout.split()
        return int(out[0]), out[1] if len(out) > 1 else "", out[2] if len(out) > 2 else ""

    def ports(self) -> list[int]:
        return [self.config.http_port, self.config.ws_port, self.config.admin_port]


def _allow(config: GatewayConfig, network: str, *extra: str) -> None:
    result = cli("allow", "add", network, *extra, config=config.path)
    assert result.returncode == 0, result.stderr


def _remove(config: GatewayConfig, network: str) -> None:
    result = cli("allow", "remove", network, config=config.path)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    require_netns()
    directory: Path = tmp_path_factory.mktemp("allowlist-netns")
    with Lab() as lab:
        a, b, c, p = (lab.add_host(name) for name in ("a", "b", "c", "p"))
        simulator = SimulatorThread()
        loopback = '"127.0.0.0/8", "::1/128"'
        config = GatewayConfig(
            directory,
            upstream_http_port=simulator.http_port,
            upstream_ws_port=simulator.ws_port,
            listen_host="",
            extra=(
                "[allowlist]\n"
                f"default_networks = [{loopback}]\n"
                f'admin_networks = [{loopback}, "{a.v4}"]\n'
                f'trusted_proxies = ["{p.v4}"]\n'
                # TLS on, so that "no ServerHello for a denied host" means something.
                "[tls]\nenabled = true\n"
                # Logins are not the subject here: the lab's hosts need none.
                "[auth]\n"
                f'trusted_networks = ["{lab.subnet_v4}", "{lab.subnet_v6}"]\n'
            ),
        )
        config.write()
        for network in (a.v4, b.v6, p.v4):
            _allow(config, network, "--label", "test host")
        gateway = GatewayProcess(config, https=True)
        try:
            yield Env(lab, a, b, c, p, config, gateway, simulator)
        finally:
            gateway.close()
            simulator.close()


def test_allowed_hosts_are_proxied(env: Env) -> None:
    for client, address in (
        (env.a, env.lab.gateway_address_v4),
        (env.b, env.lab.gateway_address_v6),
    ):
        out = client.python(GET, env.url(address), timeout=15).stdout.splitlines()
        assert out[0] == "200", (client.name, out)
        assert json.loads(out[1])["mac"] == "80:1F:12:47:06:B0"
    # And the CEMM learns the real client address from the gateway.
    seen = [r.header("x-forwarded-for") for r in env.simulator.sim.requests]
    assert env.a.v4 in seen and env.b.v6 in seen


@pytest.mark.parametrize("mode", ["http", "tls"])
def test_denied_hosts_get_no_response_on_any_port(env: Env, mode: str) -> None:
    env.simulator.sim.clear_traffic()
    denied = [
        (env.b, env.lab.gateway_address_v4),  # B's IPv4 address is not allowed
        (env.c, env.lab.gateway_address_v4),
        (env.a, env.lab.gateway_address_v6),  # A's IPv6 address is not allowed
        (env.c, env.lab.gateway_address_v6),
    ]
    for client, address in denied:
        for port in env.ports():
            received, head, _ = env.probe(client, address, port, mode)
            assert received == 0, f"{client.name} -> {address}:{port} got {head}"
    # Nothing reached the CEMM but the gateway's own health checks (issue 8).
    reached = [
        r for r in env.simulator.sim.requests if r.header("user-agent") != "cemm-gateway-monitor"
    ]
    assert reached == []


def test_allowed_host_gets_tls_server_hello(env: Env) -> None:
    # The positive control for the test above: the same probe does get an answer.
    received, head, _ = env.probe(env.a, env.lab.gateway_address_v4, env.config.http_port, "tls")
    assert received > 0 and head.startswith("16"), head  # a TLS handshake record


def test_admin_port_uses_its_own_list(env: Env) -> None:
    admin = env.url(env.lab.gateway_address_v4, "admin", "/healthz")
    out = env.a.python(GET, admin, timeout=15).stdout.splitlines()
    assert out[0] == "200"
    # P is allowed on the web port but not in admin_networks.
    assert env.probe(env.p, env.lab.gateway_address_v4, env.config.admin_port, "http")[0] == 0
    assert env.p.python(GET, env.url(env.lab.gateway_address_v4), timeout=15).stdout.startswith(
        "200"
    )


def test_spoofed_forwarding_headers_from_untrusted_hosts_are_ignored(env: Env) -> None:
    env.simulator.sim.clear_traffic()
    out = env.a.python(
        GET,
        env.url(env.lab.gateway_address_v4, path="/_sim/headers"),
        f"X-Forwarded-For: {env.b.v6}",
        "Forwarded: for=192.0.2.1",
        timeout=15,
    ).stdout.splitlines()
    assert out[0] == "200"
    headers = json.loads(out[1])["headers"]
    assert headers["x-forwarded-for"] == env.a.v4
    assert "forwarded" not in headers


def test_trusted_proxy_forwarding_is_honoured(env: Env) -> None:
    gateway = env.lab.gateway_address_v4
    env.simulator.sim.clear_traffic()
    allowed = env.p.python(
        GET, env.url(gateway, path="/_sim/headers"), f"X-Forwarded-For: {env.a.v4}", timeout=15
    ).stdout.splitlines()
    assert allowed[0] == "200"
    assert json.loads(allowed[1])["headers"]["x-forwarded-for"] == env.a.v4

    denied = env.p.python(
        GET,
        env.url(gateway, path="/_sim/denied-marker"),
        f"X-Forwarded-For: {env.c.v4}",
        timeout=15,
    ).stdout.splitlines()
    assert denied[0] == "403"
    malformed = env.p.python(
        GET, env.url(gateway, path="/_sim/denied-marker"), "X-Forwarded-For: not-an-ip", timeout=15
    ).stdout.splitlines()
    assert malformed[0] == "400"
    assert not any(r.path == "/_sim/denied-marker" for r in env.simulator.sim.requests)


def _watch(client: Host, url: str) -> tuple[subprocess.Popen[str], float]:
    process = client.python_popen(
        WATCH_WEBSOCKET, url, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline().split()
    assert line and line[0] == "OPEN", line
    return process, float(line[1])


def _closed_at(process: subprocess.Popen[str], timeout: float = 10) -> float:
    assert process.stdout is not None
    line = process.stdout.readline().split()
    process.wait(timeout)
    assert line and line[0] == "CLOSED", line
    return float(line[1])


def test_removing_an_entry_closes_open_websockets(env: Env) -> None:
    host = env.lab.add_host("live")
    reloads = policy_reloads(env.gateway.log_path)
    _allow(env.config, host.v4)
    wait_policy_reload(env.gateway.log_path, reloads)
    ws_port_url = env.url(env.lab.gateway_address_v4, "ws", "/ws").replace("https", "wss", 1)
    web_port_url = env.url(env.lab.gateway_address_v4, "http", "/ws").replace("https", "wss", 1)
    watchers = [_watch(host, ws_port_url)[0], _watch(host, web_port_url)[0]]
    started = time.time()
    _remove(env.config, host.v4)
    removed_at = changed_at(env.config.data_dir, "allowlist.remove")
    delays = [_closed_at(watcher) - removed_at for watcher in watchers]
    print(
        f"closed {[round(d, 3) for d in delays]} s after the removal was committed "
        f"('allow remove' took {time.time() - started:.3f} s to get there and exit)"
    )
    # The gateway polls the database every reload_interval (0.25 s); one second is the
    # promise, two the margin for a loaded machine.
    assert max(delays) < 2.0
    assert env.probe(host, env.lab.gateway_address_v4, env.config.http_port, "http")[0] == 0


def test_expiring_entry_stops_working_at_its_expiry(env: Env) -> None:
    host = env.lab.add_host("brief")
    reloads = policy_reloads(env.gateway.log_path)
    _allow(env.config, host.v4, "--expires", "4s")

    def entry() -> dict:
        listed = json.loads(cli("allow", "list", "--json", config=env.config.path).stdout)
        (found,) = [e for e in listed["entries"] if e["network"].startswith(host.v4)]
        return found

    # Measured from the entry's own expires_at, not from the CLI's exit (which comes a
    # start-up time after the commit on a loaded machine).
    expires_at = entry()["expires_at"]
    wait_policy_reload(env.gateway.log_path, reloads)
    url = env.url(env.lab.gateway_address_v4, "ws", "/ws").replace("https", "wss", 1)
    watcher, opened = _watch(host, url)
    assert opened < expires_at, "the socket opened after the expiry: the machine is too slow"
    closed = _closed_at(watcher, timeout=15)
    print(f"closed {closed - expires_at:.3f} s after the entry's expires_at")
    assert -0.5 < closed - expires_at < 2.0, closed - expires_at
    assert env.probe(host, env.lab.gateway_address_v4, env.config.http_port, "http")[0] == 0
    assert entry()["active"] is False
