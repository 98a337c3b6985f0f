"""WireGuard end to end, as root, in the test's own namespaces, with wireguard-go.

    phone ns --(internet link 203.0.113.0/30)-- gateway ns --(LAN 198.18.0.0/24)-- cemm ns
                                                          \\-- lan ns (another LAN host)

The phone is not on the LAN: it reaches the gateway only over its "internet" link, and the
gateway has IP forwarding on (as container hosts usually do), so only the gateway's
firewall rule stands between the tunnel and the LAN.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gateway.wireguard.interface import FIREWALL_TABLE
from gateway.wireguard.keys import generate_private_key, public_key
from tests.support.gateway import ROOT, cli, policy_reloads, wait_policy_reload
from tests.support.netns import Host, Lab, require_netns, wireguard_name

pytestmark = [pytest.mark.root, pytest.mark.timeout(240)]

PASSWORD = "correct-horse-battery-staple"
GATEWAY_TUNNEL = "10.13.13.1"
GATEWAY_TUNNEL6 = "fd13:13:13::1"
PHONE_LINK, GATEWAY_LINK = "203.0.113.2", "203.0.113.1"

# Runs in the phone's namespace: log in through the tunnel, load the page and one reading.
PHONE_CLIENT = r"""
import json, sys, httpx
from websockets.sync.client import connect
base = sys.argv[2]
login = httpx.post(base + "/.gateway/api/login", timeout=4,
                   json={"username": "admin", "password": sys.argv[1]})
token = login.cookies["cemm_session"]
page = httpx.get(base + "/", cookies={"cemm_session": token}, timeout=4)
assert page.status_code == 200 and "/assets/app.js" in page.text, page.status_code
with connect(base.replace("http", "ws", 1) + ":8090/ws", origin=base, open_timeout=4,
             additional_headers={"Cookie": "cemm_session=" + token}) as ws:
    reading = json.loads(ws.recv(timeout=4))
print(json.dumps({"page": page.status_code, "reading": reading["type"]}))
"""

# Runs in the phone's namespace: can a TCP connection be made at all?
TCP_PROBE = r"""
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
    print("open")
except OSError as error:
    print("closed", type(error).__name__)
"""


@dataclass
class Phone:
    netns: str
    processes: list[subprocess.Popen]
    interface: str  # its tunnel's default name (see wireguard_name)

    def argv(self, args: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *args]

    def run(
        self, args: list[str], *, timeout: float = 20, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            input=input,
        )

    def python(
        self, code: str, *args: str, timeout: float = 20
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            ["env", f"PYTHONPATH={ROOT}", sys.executable, "-c", code, *args],
            timeout=timeout,
            check=False,
        )

    def tunnel_up(self, config: str, name: str = "") -> None:
        """Bring up a gateway-made config with wireguard-go, `wg setconf` and `ip`."""
        name = name or self.interface
        self.tunnel_down(name)
        self.processes.append(
            subprocess.Popen(
                self.argv(["wireguard-go", "-f", name]),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        for _ in range(100):
            if self.run(["ip", "link", "show", name], check=False).returncode == 0:
                break
            time.sleep(0.05)
        addresses = re.search(r"^Address = (.+)$", config, re.M).group(1).split(", ")
        allowed = re.search(r"^AllowedIPs = (.+)$", config, re.M).group(1).split(", ")
        # wg setconf takes the [Interface] keys wg understands; Address is wg-quick's.
        plain = "\n".join(line for line in config.splitlines() if not line.startswith("Address"))
        self.run(["wg", "setconf", name, "/dev/stdin"], input=plain + "\n")
        for address in addresses:
            self.run(["ip", "address", "add", address, "dev", name, "nodad"])
        self.run(["ip", "link", "set", name, "up"])
        for network in allowed:
            self.run(["ip", "route", "replace", network, "dev", name])

    def tunnel_down(self, name: str = "") -> None:
        self.run(["ip", "link", "del", name or self.interface], check=False)

    def works(self, timeout: float = 20, base: str = f"http://{GATEWAY_TUNNEL}") -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.python(PHONE_CLIENT, PASSWORD, base, timeout=15).returncode == 0:
                return True
            time.sleep(0.5)
        return False

    def blocked(self, seconds: float = 6) -> bool:
        """No answer through the tunnel for ``seconds`` (a few attempts)."""
        out = self.python(TCP_PROBE, GATEWAY_TUNNEL, "80", str(seconds), timeout=seconds + 10)
        return out.stdout.startswith("closed")


@dataclass
class Env:
    lab: Lab
    gateway: Host
    cemm: Host
    lan: Host
    phone: Phone
    config: Path
    log: Path
    process: subprocess.Popen
    interface: str  # the gateway's WireGuard interface
    phone_config: str = ""

    def firewall_table(self) -> bool:
        listed = self.gateway.run(["nft", "list", "table", "inet", FIREWALL_TABLE], check=False)
        return listed.returncode == 0

    @contextmanager
    def gateway_frozen(self) -> Iterator[None]:
        """The gateway process stopped (SIGSTOP; wireguard-go keeps running): no checks."""
        os.kill(self.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.process.pid, signal.SIGCONT)


def _setup_phone(lab: Lab, gateway: Host) -> Phone:
    name = f"cgwph{os.getpid()}x{secrets.token_hex(2)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    phone = Phone(name, [], wireguard_name("wgp"))
    veth = f"vph{secrets.token_hex(3)}"
    subprocess.run(
        [
            "ip",
            "link",
            "add",
            veth,
            "netns",
            name,
            "type",
            "veth",
            "peer",
            "name",
            veth + "g",
            "netns",
            gateway.netns,
        ],
        check=True,
    )
    phone.run(["ip", "link", "set", "lo", "up"])
    phone.run(["ip", "address", "add", f"{PHONE_LINK}/30", "dev", veth])
    phone.run(["ip", "link", "set", veth, "up"])
    gateway.run(["ip", "address", "add", f"{GATEWAY_LINK}/30", "dev", veth + "g"])
    gateway.run(["ip", "link", "set", veth + "g", "up"])
    return phone


def _teardown_phone(phone: Phone) -> None:
    for process in phone.processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # wireguard-go then removes its socket
        try:
            process.wait(3)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    subprocess.run(["ip", "netns", "del", phone.netns], check=False)


@contextmanager
def _environment(
    directory: Path, *, listen_on_lan: bool = False, subnet6: str = "", interface: str = ""
) -> Iterator[Env]:
    """The lab, the gateway (``[listen] host`` empty, or its LAN address) and a peer "phone".

    The gateway's interface is ``interface`` or a name of its own (:func:`wireguard_name`):
    wireguard-go's control socket is ``/run/wireguard/<interface>.sock``, and ``/run`` is not
    per network namespace, so no two tests (in any worker) may share a name.
    """
    require_netns()
    interface = interface or wireguard_name()
    with Lab(gateway_in_namespace=True) as lab:
        gateway = lab.gateway_host
        cemm, lan = lab.add_host("cemm"), lab.add_host("lan")
        phone = _setup_phone(lab, gateway)
        try:
            gateway.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
            # The LAN host would answer the tunnel's addresses if anything reached it.
            lan.run(["ip", "route", "add", "10.13.13.0/24", "via", lab.gateway_address_v4])
            lan.popen(
                [sys.executable, "-m", "http.server", "8000", "--bind", lan.v4],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            cemm.popen(
                [
                    sys.executable,
                    "-m",
                    "gateway.simulator",
                    "--host",
                    cemm.v4,
                    "--http-port",
                    "80",
                    "--ws-port",
                    "8090",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            config = directory / "gateway.toml"
            config.write_text(
                f'data_dir = "{directory / "data"}"\nreload_interval = 0.2\n'
                f'[upstream]\nhost = "{cemm.v4}"\n'
                f'[listen]\nhost = "{lab.gateway_address_v4 if listen_on_lan else ""}"\n'
                f'[allowlist]\ndefault_networks = ["{lab.subnet_v4}", "127.0.0.0/8"]\n'
                f'[wireguard]\nenabled = true\nendpoint = "{GATEWAY_LINK}:51820"\n'
                f'subnet6 = "{subnet6}"\ninterface = "{interface}"\n'
                f'[auth]\ninitial_admin_password = "{PASSWORD}"\n'
                "[auth.bruteforce]\nnever_ban = []\nfree_attempts = 1000\nban_after = 1000\n"
            )
            log = directory / "gateway.log"
            process = gateway.popen(
                [sys.executable, "-m", "gateway", "run", "--config", str(config)],
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                cwd=ROOT,
            )
            try:
                gateway.wait_tcp(lab.gateway_address_v4, 80, timeout=30)
            except Exception:
                pytest.fail(f"the gateway did not start:\n{log.read_text()[-3000:]}")
            cemm_up = gateway.run(
                [
                    "python3",
                    "-c",
                    f"import socket; socket.create_connection(('{cemm.v4}', 80), timeout=10)",
                ],
                check=False,
            )
            assert cemm_up.returncode == 0, log.read_text()
            environment = Env(lab, gateway, cemm, lan, phone, config, log, process, interface)
            added = cli("peer", "add", "phone", config=config)
            assert added.returncode == 0, added.stderr
            environment.phone_config = added.stdout
            yield environment
        finally:
            _teardown_phone(phone)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with _environment(tmp_path_factory.mktemp("wireguard")) as environment:
        yield environment


def _phone_ready(env: Env) -> None:
    """The phone's own tunnel up and working (tests may leave other configs behind)."""
    if env.phone.works(timeout=3):
        return
    config = env.phone_config
    env.phone.tunnel_up(config)
    assert env.phone.works(), env.log.read_text()[-3000:]


def _wait_for(condition: Callable[[], bool], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout:g} s"
        time.sleep(0.2)


def _add_peer(env: Env, name: str, *extra: str) -> str:
    result = cli("peer", "add", name, *extra, config=env.config)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_phone_loads_the_cemm_through_the_tunnel(env: Env) -> None:
    config = env.phone_config
    assert "AllowedIPs = 10.13.13.1/32\n" in config
    assert f"Endpoint = {GATEWAY_LINK}:51820" in config and "PresharedKey = " in config
    env.phone.tunnel_up(config)
    assert env.phone.works(), env.log.read_text()[-3000:]
    # Without the tunnel, the phone's "internet" address is refused before HTTP.
    direct = env.phone.python(TCP_PROBE, GATEWAY_LINK, "80", "3")
    assert direct.stdout.startswith("open")  # TCP accept happens in the kernel ...
    http = env.phone.python(
        "import httpx,sys\ntry:\n print(httpx.get('http://203.0.113.1/', timeout=3).status_code)"
        "\nexcept httpx.HTTPError as e:\n print('refused', type(e).__name__)"
    )
    assert http.stdout.startswith("refused"), http.stdout  # ... and is closed at once.
    # The gateway notices the first handshake within its check interval (2 s).
    deadline = time.monotonic() + 10
    while True:
        listed = json.loads(cli("peer", "list", "--json", config=env.config).stdout)
        (peer,) = [p for p in listed if p["name"] == "phone"]
        if peer["first_handshake_at"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert peer["first_handshake_at"] is not None
    # The generated private key is gone after the first handshake.
    again = cli("peer", "link", "phone", config=env.config)
    assert again.returncode == 1 and "no longer available" in again.stderr


def test_nothing_else_on_the_lan_through_the_tunnel(env: Env) -> None:
    _phone_ready(env)
    # A peer that widens its own AllowedIPs and routes the LAN into the tunnel ...
    server_key = env.phone.run(["wg", "show", env.phone.interface, "peers"]).stdout.split()[0]
    env.phone.run(
        [
            "wg",
            "set",
            env.phone.interface,
            "peer",
            server_key,
            "allowed-ips",
            f"{GATEWAY_TUNNEL}/32,{env.lab.subnet_v4}",
        ]
    )
    env.phone.run(["ip", "route", "replace", str(env.lab.subnet_v4), "dev", env.phone.interface])
    try:
        lan = env.phone.python(TCP_PROBE, env.lan.v4, "8000", "4", timeout=20)
        assert lan.stdout.startswith("closed"), lan.stdout
        # ... and the gateway's own other ports are closed to the tunnel too.
        other = env.phone.python(TCP_PROBE, GATEWAY_TUNNEL, "22", "3", timeout=20)
        assert other.stdout.startswith("closed"), other.stdout
        # The firewall rule is what stops it: without it the LAN host answers (the gateway
        # frozen meanwhile, or its check would put the rule back).
        with env.gateway_frozen():
            env.gateway.run(["nft", "delete", "table", "inet", FIREWALL_TABLE])
            open_lan = env.phone.python(TCP_PROBE, env.lan.v4, "8000", "4", timeout=20)
        assert open_lan.stdout.startswith("open"), open_lan.stdout
        # The gateway's check puts the rule back within seconds, and logs it.
        _wait_for(env.firewall_table, timeout=10)
        lan = env.phone.python(TCP_PROBE, env.lan.v4, "8000", "4", timeout=20)
        assert lan.stdout.startswith("closed"), lan.stdout
        assert f"(nftables table inet {FIREWALL_TABLE}) was gone" in env.log.read_text()
    finally:
        env.phone.run(
            ["ip", "route", "del", str(env.lab.subnet_v4), "dev", env.phone.interface], check=False
        )
        env.phone.run(
            [
                "wg",
                "set",
                env.phone.interface,
                "peer",
                server_key,
                "allowed-ips",
                f"{GATEWAY_TUNNEL}/32",
            ],
            check=False,
        )


def test_flushed_firewall_rule_comes_back(env: Env) -> None:
    """A host firewall reload that flushes the ruleset takes the rule away; the gateway's
    2-second check applies it again, unchanged, and logs a warning."""
    _phone_ready(env)
    _wait_for(env.firewall_table, timeout=10)
    rule = env.gateway.run(["nft", "list", "table", "inet", FIREWALL_TABLE]).stdout
    warnings = env.log.read_text().count(f"(nftables table inet {FIREWALL_TABLE}) was gone")
    env.gateway.run(["nft", "flush", "ruleset"])
    started = time.monotonic()
    _wait_for(env.firewall_table, timeout=10)
    elapsed = time.monotonic() - started
    print(f"firewall rule back {elapsed:.1f} s after the ruleset was flushed")
    assert env.gateway.run(["nft", "list", "table", "inet", FIREWALL_TABLE]).stdout == rule
    assert elapsed < 5
    _wait_for(
        lambda: (
            env.log.read_text().count(f"(nftables table inet {FIREWALL_TABLE}) was gone") > warnings
        ),
        timeout=5,
    )
    assert env.phone.works()


def test_killed_wireguard_go_comes_back(env: Env) -> None:
    _phone_ready(env)
    pids = env.gateway.run(["ip", "netns", "pids", env.gateway.netns], check=False)
    killed = 0
    for pid in pids.stdout.split():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if command[:1] == [b"wireguard-go"] and env.interface.encode() in command:
            os.kill(int(pid), 9)
            killed += 1
    assert killed == 1
    started = time.monotonic()
    assert env.phone.works(timeout=20)
    elapsed = time.monotonic() - started
    print(f"tunnel working again {elapsed:.1f} s after wireguard-go was killed")
    assert elapsed < 10


def _off_the_interface(env: Env, config: str, *, timeout: float) -> None:
    """Wait until the gateway's interface no longer lists the peer of ``config`` (what cuts
    it off), instead of sleeping as if that proved it."""
    key = public_key(re.search(r"PrivateKey = (\S+)", config).group(1))
    _wait_for(
        lambda: key not in env.gateway.run(["wg", "show", env.interface, "peers"]).stdout,
        timeout=timeout,
    )


def test_disabled_removed_expired_and_unknown_peers_get_nothing(env: Env) -> None:
    _phone_ready(env)
    assert cli("peer", "disable", "phone", config=env.config).returncode == 0
    _off_the_interface(env, env.phone_config, timeout=10)
    assert env.phone.blocked()
    assert cli("peer", "enable", "phone", config=env.config).returncode == 0
    assert env.phone.works()
    # An unknown key: a configuration the gateway never made.
    stranger = _add_peer(env, "stranger")
    assert cli("peer", "remove", "stranger", config=env.config).returncode == 0
    forged_key = generate_private_key()
    forged = re.sub(r"PrivateKey = \S+", f"PrivateKey = {forged_key}", stranger)
    peers = env.gateway.run(["wg", "show", env.interface, "peers"]).stdout
    assert public_key(forged_key) not in peers
    forged_interface = wireguard_name("wgx")
    env.phone.tunnel_up(forged, name=forged_interface)
    try:
        env.phone.tunnel_down()
        assert env.phone.blocked()
    finally:
        env.phone.tunnel_down(forged_interface)
    # A removed peer, and one that expired.
    short = _add_peer(env, "short", "--expires", "15s")
    expires = time.monotonic() + 15
    env.phone.tunnel_up(short)
    assert env.phone.works()
    _off_the_interface(env, short, timeout=max(0.0, expires - time.monotonic()) + 10)
    assert env.phone.blocked()
    removable = _add_peer(env, "removable")
    env.phone.tunnel_up(removable)
    assert env.phone.works()
    assert cli("peer", "remove", "removable", config=env.config).returncode == 0
    _off_the_interface(env, removable, timeout=10)
    assert env.phone.blocked()


def test_one_time_link_and_qr_code(env: Env, tmp_path: Path) -> None:
    from tests.support.browser import chromium

    added = _add_peer(env, "tablet")
    printed = cli("peer", "link", "tablet", config=env.config).stdout.strip()
    # A whole link on the gateway's web address; the phone on the LAN uses that address.
    assert printed.startswith("http://") and "/.gateway/peer/" in printed
    url = f"http://{env.lab.gateway_address_v4}{urlsplit(printed).path}"
    fetch = r"""
import sys, httpx
r = httpx.get(sys.argv[1], timeout=5)
print(r.status_code)
sys.stdout.write(r.text)
"""
    first = env.lan.python(fetch, url, timeout=20).stdout
    assert first.startswith("200")
    page = first.split("\n", 1)[1]
    download = re.search(r'href="data:application/octet-stream;base64,([^"]+)"', page).group(1)
    import base64

    config = base64.b64decode(download).decode()
    assert config == added
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    second = env.lan.python(fetch, url, timeout=20).stdout
    assert second.startswith("404")
    # The QR code on the page decodes to exactly the downloadable configuration.
    with chromium() as browser:
        view = browser.new_page()
        view.set_content(f"<body style='margin:40px;background:#fff'>{svg}</body>")
        view.locator("svg").screenshot(path=str(tmp_path / "qr.png"))
    decoded = subprocess.run(
        ["zbarimg", "--quiet", "--raw", str(tmp_path / "qr.png")],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert decoded.returncode == 0, decoded.stderr
    assert decoded.stdout.rstrip("\n") == config.rstrip("\n")


# Runs in the phone's namespace: log in, download N bytes, report size, digest and rate.
BULK = r"""
import hashlib, json, sys, time, httpx
base, size = sys.argv[1], int(sys.argv[2])
login = httpx.post(base + "/.gateway/api/login", timeout=5,
                   json={"username": "admin", "password": sys.argv[3]})
cookies = {"cemm_session": login.cookies["cemm_session"]}
digest, received = hashlib.sha256(), 0
started = time.perf_counter()
with httpx.stream("GET", f"{base}/_sim/bytes/{size}", cookies=cookies, timeout=60) as response:
    for chunk in response.iter_bytes():
        digest.update(chunk)
        received += len(chunk)
seconds = time.perf_counter() - started
rate = received * 8 / seconds / 1e6
print(json.dumps({"bytes": received, "sha256": digest.hexdigest(), "mbit_s": rate}))
"""


def test_bulk_transfer_through_the_tunnel(env: Env) -> None:
    """A 50 MB download arrives intact through the tunnel; the rate is printed next to the
    same download over the phone's direct link (both through the gateway's proxy)."""
    size = 50 * 1024 * 1024
    expected = hashlib.sha256(bytes(i % 256 for i in range(256)) * (size // 256)).hexdigest()
    config = _add_peer(env, "bulk")
    env.phone.tunnel_up(config)
    assert env.phone.works()
    reloads = policy_reloads(env.log)
    assert cli("allow", "add", PHONE_LINK, "--label", "bench", config=env.config).returncode == 0
    wait_policy_reload(env.log, reloads)
    rates = {}
    try:
        for label, base in (
            ("tunnel", f"http://{GATEWAY_TUNNEL}"),
            ("direct", f"http://{GATEWAY_LINK}"),
        ):
            runs = []
            for _ in range(3):
                out = env.phone.python(BULK, base, str(size), PASSWORD, timeout=120)
                assert out.returncode == 0, out.stderr[-2000:]
                result = json.loads(out.stdout)
                assert result["bytes"] == size and result["sha256"] == expected
                runs.append(result["mbit_s"])
            rates[label] = statistics.median(runs)
    finally:
        cli("allow", "remove", PHONE_LINK, config=env.config)
    print(
        f"50 MB download, median of 3: through the tunnel {rates['tunnel']:.0f} Mbit/s, "
        f"direct {rates['direct']:.0f} Mbit/s (ratio {rates['tunnel'] / rates['direct']:.2f})"
    )


def test_listen_host_of_its_own_serves_both_tunnel_addresses(tmp_path: Path) -> None:
    """``[listen] host`` set to the LAN address: the gateway listens on its IPv4 and IPv6
    tunnel addresses too (a client's AllowedIPs names both), and its log says where."""
    with _environment(tmp_path, listen_on_lan=True, subnet6="fd13:13:13::/64") as env:
        config = env.phone_config
        assert f"AllowedIPs = {GATEWAY_TUNNEL}/32, {GATEWAY_TUNNEL6}/128\n" in config
        env.phone.tunnel_up(config)
        assert env.phone.works(), env.log.read_text()[-3000:]
        assert env.phone.works(base=f"http://[{GATEWAY_TUNNEL6}]"), env.log.read_text()[-3000:]
        admin = env.phone.python(TCP_PROBE, GATEWAY_TUNNEL6, "8443", "3")
        assert admin.stdout.startswith("open"), admin.stdout
        addresses = (env.lab.gateway_address_v4, GATEWAY_TUNNEL, f"[{GATEWAY_TUNNEL6}]")
        log = env.log.read_text()
    for port, name in ((80, "web"), (8090, "ws"), (8443, "admin")):
        for address in addresses:
            assert log.count(f"listening on {address}:{port} ({name})") == 1, (address, log)
