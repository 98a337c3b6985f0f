"""Tests of the network-namespace harness itself (tests/support/netns.py)."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netns import (
    PREFIX,
    PUBLIC_V4,
    PUBLIC_V6,
    CommandError,
    Host,
    Lab,
    available,
    list_netns,
    require_netns,
    sweep_leftovers,
)

pytestmark = [pytest.mark.root, pytest.mark.timeout(20)]


@pytest.fixture(autouse=True)
def _netns_required() -> None:
    require_netns()


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


# Connects to argv[1]:argv[2], sends argv[3], prints the local address the kernel chose.
CONNECT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as s:
    s.sendall(sys.argv[3].encode())
    print(s.getsockname()[0])
"""

# Tries to connect; prints "ok" or the errno name. Never raises.
PROBE = """
import errno, socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
    print("ok")
except OSError as exc:
    print(errno.errorcode.get(exc.errno, repr(exc)) if exc.errno else type(exc).__name__)
"""

# TCP server for a namespace: accepts argv[2] connections per address (argv[1] is a
# comma-separated list), prints "<listen addr> <peer addr> <payload>" per connection.
SERVER = """
import socket, sys
addrs, count = sys.argv[1].split(","), int(sys.argv[2])
socks = []
for addr in addrs:
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 8080))
    s.listen()
    s.settimeout(10)
    socks.append(s)
print("listening", flush=True)
for s in socks:
    for _ in range(count):
        conn, peer = s.accept()
        with conn:
            conn.settimeout(5)
            print(s.getsockname()[0], peer[0], conn.recv(100).decode(), flush=True)
"""


class PeerRecorder:
    """Plain socket server thread bound to an address in the test process' namespace."""

    def __init__(self, address: str) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((address, 0))
        self.sock.listen()
        self.sock.settimeout(10)
        self.port: int = self.sock.getsockname()[1]
        self.seen: dict[str, str] = {}  # payload -> peer address
        self.errors: list[BaseException] = []
        self._thread: threading.Thread | None = None

    def serve(self, count: int) -> None:
        def loop() -> None:
            try:
                for _ in range(count):
                    conn, peer = self.sock.accept()
                    with conn:
                        conn.settimeout(5)
                        self.seen[conn.recv(100).decode()] = peer[0]
            except BaseException as exc:
                self.errors.append(exc)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def join(self) -> dict[str, str]:
        assert self._thread is not None
        self._thread.join(timeout=15)
        self.sock.close()
        assert not self._thread.is_alive(), "server thread did not finish"
        assert not self.errors, self.errors
        return self.seen


def _addresses(host: Host) -> dict[str, list[dict[str, object]]]:
    info = json.loads(host.run(["ip", "-j", "addr", "show"]).stdout)
    return {str(entry["ifname"]): entry["addr_info"] for entry in info}


def _root_links() -> set[str]:
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True)
    return {str(link["ifname"]) for link in json.loads(out.stdout)}


def _process_gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        text = status.read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in text  # a zombie is dead already, just not reaped by init yet


def test_available() -> None:
    assert available() is None


def test_hosts_get_distinct_usable_v4_and_v6_addresses(lab: Lab) -> None:
    a = lab.add_host("allowed")
    b = lab.add_host("other")
    c = lab.add_host("explicit", v4=str(lab.subnet_v4[50]), v6=str(lab.subnet_v6[0x50]))

    assert len({a.v4, b.v4, c.v4, lab.gateway_address_v4}) == 4
    assert len({a.v6, b.v6, c.v6, lab.gateway_address_v6}) == 4
    assert c.addresses == (str(lab.subnet_v4[50]), str(lab.subnet_v6[0x50]))
    for host in (a, b, c):
        assert ipaddress.ip_address(host.v4) in lab.subnet_v4
        assert ipaddress.ip_address(host.v6) in lab.subnet_v6
        addrs = _addresses(host)
        assert {"lo", "eth0"} <= addrs.keys()
        eth0 = {str(ai["local"]): ai for ai in addrs["eth0"]}
        assert host.v4 in eth0
        assert host.v6 in eth0
        assert not any(ai.get("tentative") for ai in addrs["eth0"]), addrs["eth0"]
        assert any(ai["local"] == "127.0.0.1" for ai in addrs["lo"])  # lo is up
        # every namespace is separate: a host sees only its own addresses
        others = {h.v4 for h in lab.hosts if h is not host}
        assert not others & eth0.keys()


@pytest.mark.parametrize("family", ["v4", "v6"])
def test_gateway_in_root_ns_sees_each_hosts_own_source_address(lab: Lab, family: str) -> None:
    gw = lab.gateway_address_v4 if family == "v4" else lab.gateway_address_v6
    hosts = [
        lab.add_host("allowed"),
        lab.add_host("denied"),
        # outside the lab subnet ("public" client): routed on-link, still seen verbatim
        lab.add_host("public", public=True),
    ]
    assert ipaddress.ip_address(hosts[2].v4) in PUBLIC_V4
    assert ipaddress.ip_address(hosts[2].v6) in PUBLIC_V6
    server = PeerRecorder(gw)
    server.serve(count=len(hosts))
    for host in hosts:
        local = host.python(CONNECT, gw, str(server.port), host.name, timeout=10).stdout.strip()
        assert local == (host.v4 if family == "v4" else host.v6)
    seen = server.join()
    assert seen == {h.name: (h.v4 if family == "v4" else h.v6) for h in hosts}


def test_gateway_in_own_namespace_sees_each_hosts_own_source_address() -> None:
    with Lab(gateway_in_namespace=True) as lab:
        gw_host = lab.gateway_host
        assert lab.gateway_interface is None  # nothing added to the root namespace
        assert gw_host.v4 == lab.gateway_address_v4
        assert not ipaddress.ip_address(gw_host.v4).is_loopback
        hosts = [lab.add_host("a"), lab.add_host("b", v4="192.0.2.20", v6="2001:db8::20")]
        server = gw_host.python_popen(
            SERVER,
            f"{lab.gateway_address_v4},{lab.gateway_address_v6}",
            str(len(hosts)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "listening"
        for gw in (lab.gateway_address_v4, lab.gateway_address_v6):
            for host in hosts:
                host.python(CONNECT, gw, "8080", host.name, timeout=10)
        out, err = server.communicate(timeout=10)
        assert server.returncode == 0, err
        lines = {tuple(line.split()) for line in out.splitlines()}
        expected = {(lab.gateway_address_v4, h.v4, h.name) for h in hosts}
        expected |= {(lab.gateway_address_v6, h.v6, h.name) for h in hosts}
        assert lines == expected
        # NB: nothing in the root namespace routes to this lab; the test process must not
        # address it (its packets would leave via the machine's default route).


def test_host_cannot_reach_another_labs_hosts_or_gateway() -> None:
    with Lab() as lab_a, Lab() as lab_b:
        assert lab_a.subnet_v4 != lab_b.subnet_v4
        assert lab_a.subnet_v6 != lab_b.subnet_v6
        a1 = lab_a.add_host("a1")
        b1, b2 = lab_b.add_host("b1"), lab_b.add_host("b2")
        server = b1.python_popen(SERVER, f"{b1.v4},{b1.v6}", "1", stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "listening"
        # positive control: the service is reachable from its own lab
        assert b2.python(PROBE, b1.v4, "8080").stdout.strip() == "ok"
        assert b2.python(PROBE, b1.v6, "8080").stdout.strip() == "ok"
        # ... but not from another lab: no route at all, fails at once
        for target in (b1.v4, b1.v6, lab_b.gateway_address_v4, lab_b.gateway_address_v6):
            result = a1.python(PROBE, target, "8080").stdout.strip()
            assert result == "ENETUNREACH", (target, result)
        # and not the outside world either (no default route); nothing is sent
        assert a1.python(PROBE, "198.51.100.1", "80").stdout.strip() == "ENETUNREACH"
        server.communicate(timeout=10)


def test_labs_in_namespace_mode_may_reuse_identical_addresses() -> None:
    with Lab(gateway_in_namespace=True) as lab_a, Lab(gateway_in_namespace=True) as lab_b:
        a, b = lab_a.add_host("x"), lab_b.add_host("x")
        assert a.addresses == b.addresses
        assert a.netns != b.netns
        assert lab_a.gateway_address_v4 == lab_b.gateway_address_v4


def test_cleanup_removes_namespaces_interfaces_and_processes() -> None:
    with Lab() as lab:
        host = lab.add_host("h")
        sleeper = host.popen(["sleep", "60"])
        # a grandchild in a session of its own, invisible to the process-group kill:
        # it must be found and killed through the namespace's PID list
        spawner = host.python(
            "import subprocess as sp; print(sp.Popen(['sleep', '60'], start_new_session=True,"
            " stdin=sp.DEVNULL, stdout=sp.DEVNULL, stderr=sp.DEVNULL).pid)"
        )
        orphan = int(spawner.stdout)
        ignores_term = host.python_popen(
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
            " print('ready', flush=True); time.sleep(60)",
            stdout=subprocess.PIPE,
            text=True,
        )
        assert ignores_term.stdout is not None
        assert ignores_term.stdout.readline() == "ready\n"  # SIGTERM is ignored from now on
        names = list(lab.namespaces)
        iface = lab.gateway_interface
        assert iface is not None
        assert set(names) <= set(list_netns())
        assert iface in _root_links()
        assert not _process_gone(orphan)
        pids = [sleeper.pid, ignores_term.pid, orphan]
    assert not set(names) & set(list_netns())
    assert iface not in _root_links()
    assert sleeper.returncode is not None
    assert ignores_term.returncode == -signal.SIGKILL
    ignores_term.stdout.close()
    assert all(_process_gone(pid) for pid in pids), pids
    lab.close()  # idempotent
    with pytest.raises(RuntimeError, match="not running"):
        host.run(["true"])


def test_cleanup_also_happens_on_exception() -> None:
    names: list[str] = []
    with pytest.raises(ZeroDivisionError), Lab() as lab:
        lab.add_host("h").popen(["sleep", "60"])
        names = list(lab.namespaces)
        _ = 1 / 0
    assert names
    assert not set(names) & set(list_netns())
    assert lab.gateway_interface not in _root_links()


def test_sweep_removes_leftovers_of_dead_owners_only() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert not Path(f"/proc/{dead.pid}").exists()
    token, live_token = secrets.token_hex(3), secrets.token_hex(3)
    dead_ns = f"{PREFIX}{dead.pid}x{token}-lan"
    dead_if = f"{PREFIX}{token}"
    live_ns = f"{PREFIX}{os.getpid()}x{live_token}-lan"
    try:
        for cmd in (
            ["ip", "netns", "add", dead_ns],
            ["ip", "netns", "add", live_ns],
            # a stray root-side link whose peer is in the root namespace too
            ["ip", "link", "add", dead_if, "type", "veth", "peer", "name", dead_if + "p"],
            ["ip", "link", "set", dead_if, "alias", f"cemm-gateway-netns pid={dead.pid}"],
        ):
            subprocess.run(cmd, check=True, capture_output=True)
        sweep_leftovers()  # (a parallel test run may have swept them already)
        assert dead_ns not in list_netns()
        assert live_ns in list_netns()
        assert dead_if not in _root_links()
    finally:
        for cmd in (["ip", "netns", "del", dead_ns], ["ip", "netns", "del", live_ns]):
            subprocess.run(cmd, check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", dead_if], check=False, capture_output=True)


CHILD = """
import json, os, sys
from subprocess import DEVNULL
from tests.support.netns import Lab
lab = Lab().start()
sleeper = lab.add_host("h").popen(["sleep", "60"], stdout=DEVNULL, stderr=DEVNULL)
print(json.dumps([lab.namespaces, lab.gateway_interface, sleeper.pid]), flush=True)
if sys.argv[1] == "crash":
    os._exit(1)  # no atexit, no cleanup: leaves everything behind
sys.exit(0)  # Lab never closed: the atexit safety net must clean up
"""


@pytest.mark.parametrize("how", ["exit", "crash"])
def test_atexit_net_and_sweep_after_crash(how: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, how], capture_output=True, text=True, timeout=15, env=env
    )
    names, iface, pid = json.loads(child.stdout)
    if how == "exit":
        assert child.returncode == 0, child.stderr
    else:
        assert child.returncode == 1, child.stderr
        assert set(names) <= set(list_netns())  # the crash left its namespaces behind
        assert not _process_gone(pid)
        sweep_leftovers()  # ... and the owner PID is dead now, so they go
    assert not set(names) & set(list_netns())
    assert iface not in _root_links()
    assert _process_gone(pid)


def test_rejects_addresses_outside_test_ranges_and_duplicates(lab: Lab) -> None:
    with pytest.raises(ValueError, match="documentation/test range"):
        lab.add_host("private", v4="10.0.0.5")
    with pytest.raises(ValueError, match="documentation/test range"):
        lab.add_host("google", v6="2001:4860::1")
    with pytest.raises(ValueError, match="already used"):
        lab.add_host("clash", v4=lab.gateway_address_v4)
    with pytest.raises(ValueError, match="documentation/test range"):
        Lab(subnet_v4="192.168.1.0/24").start()
    # root mode: never shadow what the root namespace already routes (here: another lab)
    with Lab() as other, pytest.raises(ValueError, match="already routes"):
        other.add_host("shadow", v4=lab.gateway_address_v4)
    with pytest.raises(ValueError, match="already routes"):
        Lab(subnet_v6=str(lab.subnet_v6)).start()
    assert lab.hosts == []


def test_run_errors_include_stderr(lab: Lab) -> None:
    host = lab.add_host("h")
    with pytest.raises(CommandError, match="boom-from-stderr") as info:
        host.python("import sys; sys.exit('boom-from-stderr')")
    assert isinstance(info.value, subprocess.CalledProcessError)
    assert info.value.returncode == 1
    assert host.python("print('x')").stdout == "x\n"
    assert host.run(["false"], check=False).returncode == 1
