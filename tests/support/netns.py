"""Network-namespace test harness: several client "hosts" with real, distinct addresses.

The allowlist of the gateway can only be tested honestly if connections really arrive from
different source addresses. This module builds a tiny, isolated L2 network out of Linux
network namespaces, a bridge and veth pairs, all driven through ``ip`` with argument lists.

Topology (one per :class:`Lab`)::

    root namespace (test process)        "lan" namespace            host namespaces
    +------------------------------+     +------------------+     +------------------------+
    | cgw<id>  198.18.N.1/24       |veth | gw  --+          |veth | eth0 198.18.N.10/24    |
    |          fd00:18:N::1/64     |-----|       |  br0     |-----|      fd00:18:N::a/64   |
    | (only if gateway runs here)  |     | h1  --+          |     +------------------------+
    +------------------------------+     | h2  --+          |     +------------------------+
                                         +------------------+-----| eth0 198.18.N.11/24 ...|
      or, with ``gateway_in_namespace=True``, the "gw" end       +------------------------+
      is eth0 of a namespace of its own (``lab.gateway_host``).

* The bridge lives in a dedicated "lan" namespace, so the root namespace only gains one veth
  end per lab (none in ``gateway_in_namespace`` mode), and a root-namespace firewall or
  ``br_netfilter`` never sees the bridged frames.
* Hosts and gateway share one L2 segment and talk *directly*: no IP forwarding, no NAT,
  no rp_filter or firewall changes in the root namespace. Hosts get no default route, so they
  can reach their own lab's segment and nothing else (not the internet, not other labs).
* A host address outside the lab subnet (e.g. a "public" ``203.0.113.7``) is configured as a
  /32 (/128) with an on-link route to the gateway address, plus an on-link host route on the
  gateway side. Source addresses are never rewritten, so the gateway sees what the host has.
* Only documentation/benchmark ranges are accepted (:data:`TEST_NETWORKS`). In root mode,
  addresses the root namespace already routes are refused as well (on this very machine the
  uplink is 192.0.2.0/24 and fd00::/64, so those must not be shadowed by lab routes).
* In ``gateway_in_namespace`` mode the test process has *no* route into the lab: never address
  lab addresses from the test process then; such packets would leave via the default route.
* Names: namespaces ``cgw<pid>x<id>-<role>``, root-namespace veth ``cgw<id>`` (alias records the
  owner PID). :func:`sweep_leftovers` removes those whose owner PID is dead; every new Lab runs it.
* Cleanup (``close()``, ``__exit__``, and ``atexit`` as a safety net) kills started processes
  by PID (SIGTERM to the process group it created, then SIGKILL), then every other PID still
  inside the lab's namespaces and waits until they have exited (or fails), deletes the
  root-side veth (synchronously), then the namespaces.
* WireGuard interfaces: wireguard-go's control socket is ``/run/wireguard/<name>.sock``, one
  file for every network namespace, so every test interface gets a name of its own
  (:func:`wireguard_name`): parallel workers and successive tests never share one.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import ipaddress
import itertools
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

__all__ = [
    "PUBLIC_V4",
    "PUBLIC_V6",
    "TEST_NETWORKS",
    "CommandError",
    "Host",
    "Lab",
    "NetnsError",
    "available",
    "list_netns",
    "require_netns",
    "sweep_leftovers",
    "wireguard_name",
]

type IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
type IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

PREFIX: Final = "cgw"
_NS_RE: Final = re.compile(rf"^{PREFIX}(\d+)x([0-9a-f]{{6}})-")
_ROOT_IF_RE: Final = re.compile(rf"^{PREFIX}[0-9a-f]{{6}}$")
_ALIAS_TAG: Final = "cemm-gateway-netns"
_ALIAS_RE: Final = re.compile(rf"^{_ALIAS_TAG} pid=(\d+)\b")
_LABEL_RE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")

#: Every address the harness configures must lie in one of these (RFC 2544 benchmark range,
#: the three TEST-NETs, the IPv6 documentation prefix, and ULA space).
TEST_NETWORKS: Final[tuple[IPNetwork, ...]] = (
    ipaddress.ip_network("198.18.0.0/15"),
    ipaddress.ip_network("192.0.2.0/24"),
    ipaddress.ip_network("198.51.100.0/24"),
    ipaddress.ip_network("203.0.113.0/24"),
    ipaddress.ip_network("2001:db8::/32"),
    ipaddress.ip_network("fd00::/8"),
)

#: Lab subnet number N (0..511) -> 198.18.0.0/15 split in /24s, and fd00:18:N::/64.
_V4_POOL: Final = ipaddress.IPv4Network("198.18.0.0/15")
#: Pools for ``add_host(..., public=True)``: "internet" clients outside the lab subnet.
PUBLIC_V4: Final = ipaddress.IPv4Network("203.0.113.0/24")
PUBLIC_V6: Final = ipaddress.IPv6Network("2001:db8:113::/64")
_POOL_SIZE: Final = 512
_FIRST_HOST: Final = 10  # auto-assigned hosts get .10, .11, ... (gateway is .1)
_LOCK_FILE: Final = Path("/run/cemm-gateway-netns.lock")
_CMD_TIMEOUT: Final = 20.0


class NetnsError(RuntimeError):
    """Setting up or tearing down the lab failed."""


class CommandError(subprocess.CalledProcessError):
    """A command exited non-zero; unlike the base class, ``str()`` includes its output."""

    def __str__(self) -> str:
        def tail(text: str | bytes | None) -> str:
            if isinstance(text, bytes):
                text = text.decode(errors="replace")
            text = (text or "").strip()
            return text[-2000:] if text else "<empty>"

        return f"{super().__str__()}\nstderr: {tail(self.stderr)}\nstdout: {tail(self.output)}"


def _cmd(args: Sequence[str], *, timeout: float = _CMD_TIMEOUT, check: bool = True) -> str:
    """Run a harness command (no shell); return stdout, raise :class:`CommandError` on failure."""
    argv = list(args)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise NetnsError(f"timed out after {timeout}s: {shlex.join(argv)}") from exc
    except OSError as exc:
        raise NetnsError(f"cannot run {shlex.join(argv)}: {exc}") from exc
    if check and proc.returncode != 0:
        raise CommandError(proc.returncode, argv, proc.stdout, proc.stderr)
    return proc.stdout


def _ip_json(args: Sequence[str], netns: str | None = None) -> list[dict[str, Any]]:
    ns = ["-n", netns] if netns else []
    out = _cmd(["ip", *ns, "-j", *args])
    return json.loads(out) if out.strip() else []


def _sysctl(netns: str | None, settings: Mapping[str, str]) -> None:
    argv = ["sysctl", "-q", "-w", *(f"{k}={v}" for k, v in settings.items())]
    _cmd(["ip", "netns", "exec", netns, *argv] if netns else argv)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_netns() -> list[str]:
    """Names of all named network namespaces (``ip netns list``)."""
    return [line.split()[0] for line in _cmd(["ip", "netns", "list"]).splitlines() if line.strip()]


def _netns_pids(netns: str) -> list[int]:
    out = _cmd(["ip", "netns", "pids", netns], check=False)
    return [int(tok) for tok in out.split() if tok.isdigit() and int(tok) != os.getpid()]


def _kill_netns_pids(netns: str, grace: float = 2.0, reaped: float = 10.0) -> None:
    """Kill (by PID) every process still living in ``netns``: SIGTERM, wait ``grace``, SIGKILL,
    then wait up to ``reaped`` seconds until none is left. A process that is still there then
    is an error: what it holds (a wireguard-go control socket, a port) would leak into the
    next test."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, reaped)):
        pids = _netns_pids(netns)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while _netns_pids(netns) and time.monotonic() < deadline:
            time.sleep(0.02)
    left = _netns_pids(netns)
    if left:
        raise NetnsError(f"PIDs {left} in {netns} survived SIGKILL for {reaped} s")


_WIREGUARD_NAMES = itertools.count()


def wireguard_name(prefix: str = "wg") -> str:
    """A WireGuard interface name that no other test uses while this one runs.

    wireguard-go's control socket is ``/run/wireguard/<name>.sock`` and ``/run`` is not per
    network namespace: two wireguard-go processes with one name collide ("UAPI listen error:
    unix socket in use") whichever namespaces they run in. The name holds this process's PID
    (one per parallel worker) and a counter (one per call), at most Linux's 15 characters.
    """
    name = f"{prefix}{os.getpid()}x{next(_WIREGUARD_NAMES)}"
    if len(name) > 15 or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"not an interface name of at most 15 characters: {name!r}")
    return name


def _delete_netns(netns: str) -> None:
    _kill_netns_pids(netns)
    _cmd(["ip", "netns", "del", netns], check=False)
    if netns in list_netns():
        raise NetnsError(f"network namespace {netns} could not be deleted")


def _delete_link(name: str, netns: str | None = None) -> None:
    ns = ["-n", netns] if netns else []
    if _cmd(["ip", *ns, "link", "show", "dev", name], check=False):
        _cmd(["ip", *ns, "link", "del", "dev", name])


def sweep_leftovers() -> list[str]:
    """Delete namespaces/links of this harness whose owner PID is dead; return their names."""
    removed: list[str] = []
    for ns in list_netns():
        m = _NS_RE.match(ns)
        if m and not _pid_alive(int(m[1])):
            _delete_netns(ns)
            removed.append(ns)
    for link in _ip_json(["link", "show"]):
        name = str(link.get("ifname", ""))
        alias = _ALIAS_RE.match(str(link.get("ifalias", "")))
        if _ROOT_IF_RE.match(name) and alias and not _pid_alive(int(alias[1])):
            _cmd(["ip", "link", "del", "dev", name], check=False)
            removed.append(name)
    return removed


@functools.cache
def available() -> str | None:
    """``None`` if the harness can run here, else the reason why not (cached)."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "needs root (creates network namespaces, veth pairs and a bridge)"
    for tool in ("ip", "sysctl"):
        if shutil.which(tool) is None:
            return f"'{tool}' not found in PATH (install iproute2 / procps)"
    if not Path("/proc/net/if_inet6").exists():
        return "IPv6 is not available in this kernel"
    probe = f"{PREFIX}{os.getpid()}x{secrets.token_hex(3)}-probe"
    try:
        _cmd(["ip", "netns", "add", probe])
        _cmd(["ip", "-n", probe, "link", "add", "br0", "type", "bridge"])
        _cmd(["ip", "-n", probe, "link", "add", "v0", "type", "veth", "peer", "name", "v1"])
        _sysctl(probe, {"net.ipv6.conf.all.accept_dad": "0"})
    except (NetnsError, subprocess.CalledProcessError) as exc:
        return f"cannot create network namespace/bridge/veth: {exc}"
    finally:
        _cmd(["ip", "netns", "del", probe], check=False)
    return None


def require_netns() -> None:
    """Skip the calling test if the harness cannot run; fail instead when ``CI`` is true."""
    reason = available()
    if reason is None:
        return
    from tests.support.ci import cannot_run

    cannot_run(f"netns harness unavailable: {reason}")


def _check_test_address(addr: IPAddress | IPNetwork) -> None:
    first, last = (
        (addr.network_address, addr.broadcast_address)
        if isinstance(addr, ipaddress.IPv4Network | ipaddress.IPv6Network)
        else (addr, addr)
    )
    if any(first in net and last in net for net in TEST_NETWORKS):
        return
    allowed = ", ".join(map(str, TEST_NETWORKS))
    raise ValueError(f"{addr} is not in a documentation/test range ({allowed})")


@contextlib.contextmanager
def _allocation_lock() -> Iterator[None]:
    """Serialise subnet allocation in the root namespace across processes."""
    try:
        fd = os.open(_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield  # best effort: without the lock a collision only makes `ip addr add` fail
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _subnets(index: int) -> tuple[ipaddress.IPv4Network, ipaddress.IPv6Network]:
    v4 = ipaddress.IPv4Network((int(_V4_POOL.network_address) + index * 256, 24))
    v6 = ipaddress.IPv6Network(f"fd00:18:{index:x}::/64")
    return v4, v6


def _root_routes() -> list[IPNetwork]:
    nets: list[IPNetwork] = []
    for family in ("-4", "-6"):
        for route in _ip_json([family, "route", "show", "table", "all"]):
            dst = str(route.get("dst", ""))
            if dst in {"", "default"}:
                continue
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.ip_network(dst, strict=False))
    return nets


def _check_unrouted(addr: IPAddress | IPNetwork) -> None:
    """Refuse addresses the root namespace already routes (e.g. the machine's own uplink)."""
    net = ipaddress.ip_network(addr)
    for route in _root_routes():
        if route.version == net.version and route.overlaps(net):
            raise ValueError(
                f"{addr} overlaps {route}, which the root namespace already routes; "
                "pick another address or use Lab(gateway_in_namespace=True)"
            )


def _free_subnet_index() -> int:
    used = _root_routes()
    for index in range(_POOL_SIZE):
        v4, v6 = _subnets(index)
        if not any(v4.overlaps(n) if n.version == 4 else v6.overlaps(n) for n in used):
            return index
    raise NetnsError("no free /24 in 198.18.0.0/15 in the root namespace")


class Host:
    """A client "host": its own network namespace with ``eth0`` on the lab's segment."""

    def __init__(self, lab: Lab, name: str, netns: str, v4: str, v6: str) -> None:
        self.lab = lab
        self.name = name
        self.netns = netns
        self.v4 = v4
        self.v6 = v6

    def __repr__(self) -> str:
        return f"Host({self.name!r}, netns={self.netns!r}, v4={self.v4}, v6={self.v6})"

    @property
    def addresses(self) -> tuple[str, str]:
        return self.v4, self.v6

    def argv(self, args: Sequence[str]) -> list[str]:
        """``args`` prefixed so that they run inside this host's namespace."""
        return ["ip", "netns", "exec", self.netns, *args]

    def run(
        self,
        args: Sequence[str],
        *,
        timeout: float = 30.0,
        check: bool = True,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``subprocess.run`` inside the namespace; text output is captured.

        Raises :class:`CommandError` (a ``CalledProcessError`` whose message includes stderr)
        if ``check`` and the exit code is non-zero, ``subprocess.TimeoutExpired`` on timeout.
        """
        self.lab._ensure_open()
        argv = self.argv(args)
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            env=None if env is None else dict(env),
            check=False,
        )
        if check and proc.returncode != 0:
            raise CommandError(proc.returncode, argv, proc.stdout, proc.stderr)
        return proc

    def popen(self, args: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """``subprocess.Popen`` inside the namespace, in a new session (process group).

        The Lab terminates it (and its process group) by PID when it closes. Keyword
        arguments go to ``Popen``; if you pass ``stdout=PIPE``, read it (``communicate``).
        Inside :meth:`run`/:meth:`python` (captured output), give background children
        ``stdout``/``stderr`` of their own (e.g. ``DEVNULL``): an inherited pipe keeps the
        caller waiting for EOF until its timeout.
        """
        self.lab._ensure_open()
        if "start_new_session" in kwargs or "process_group" in kwargs:
            raise ValueError("the harness manages the session/process group itself")
        proc: subprocess.Popen[Any] = subprocess.Popen(
            self.argv(args), start_new_session=True, **kwargs
        )
        self.lab._procs.append(proc)
        return proc

    def python(
        self,
        code: str,
        *args: str,
        timeout: float = 30.0,
        check: bool = True,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``sys.executable -c code *args`` (this venv: httpx, websockets, ...) in here."""
        return self.run(
            [sys.executable, "-c", code, *args], timeout=timeout, check=check, input=input, env=env
        )

    def python_popen(self, code: str, *args: str, **kwargs: Any) -> subprocess.Popen[Any]:
        """Like :meth:`python`, but started in the background via :meth:`popen`."""
        return self.popen([sys.executable, "-c", code, *args], **kwargs)

    def wait_tcp(self, address: str, port: int, timeout: float = 10.0) -> None:
        """Wait until ``address:port`` accepts TCP connections from this host."""
        self.python(_WAIT_TCP, address, str(port), str(timeout), timeout=timeout + 10)


_WAIT_TCP: Final = """
import socket, sys, time
host, port, deadline = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while True:
    try:
        socket.create_connection((host, port), timeout=1).close()
        break
    except OSError as exc:
        if time.monotonic() > deadline:
            sys.exit(f"{host}:{port} not reachable: {exc}")
        time.sleep(0.05)
"""

_LIVE_LABS: set[Lab] = set()


@atexit.register
def _close_live_labs() -> None:
    for lab in list(_LIVE_LABS):
        with contextlib.suppress(Exception):
            lab.close()


class Lab:
    """An isolated L2 segment with a gateway address and any number of client hosts.

    ``gateway_in_namespace=False``: the gateway address lives on a veth in the namespace of
    the test process, so a gateway started there (or a socket in the test itself) can bind it.
    The lab subnet is then the first /24 of 198.18.0.0/15 (and ``fd00:18:N::/64``) not
    routed in the root namespace, so parallel labs do not collide.

    ``gateway_in_namespace=True``: the gateway address is ``eth0`` of a namespace of its own;
    run the gateway with ``lab.gateway_host.popen(...)``. Subnet defaults to 198.18.0.0/24 and
    fd00:18::/64 (no collisions possible, nothing is added to the root namespace).
    """

    def __init__(
        self,
        gateway_in_namespace: bool = False,
        *,
        subnet_v4: str | None = None,
        subnet_v6: str | None = None,
        ready_timeout: float = 10.0,
    ) -> None:
        self.gateway_in_namespace = gateway_in_namespace
        self.ready_timeout = ready_timeout
        self.id = secrets.token_hex(3)
        self._requested = (subnet_v4, subnet_v6)
        self.subnet_v4: ipaddress.IPv4Network = ipaddress.IPv4Network("198.18.0.0/24")
        self.subnet_v6: ipaddress.IPv6Network = ipaddress.IPv6Network("fd00:18::/64")
        self.hosts: list[Host] = []
        self.namespaces: list[str] = []  # creation order
        self.gateway_interface: str | None = None  # root-namespace veth (root mode only)
        self._gateway_host: Host | None = None
        self._gw_dev = ""  # gateway-side device name (in root ns or gateway ns)
        self._gw_ns: str | None = None
        self._lan = ""
        self._procs: list[subprocess.Popen[Any]] = []
        self._used: set[IPAddress] = set()
        self._routes: list[tuple[str, str]] = []
        self._started = False
        self._closed = False

    # ----------------------------------------------------------------- properties
    @property
    def gateway_address_v4(self) -> str:
        return str(self.subnet_v4[1])

    @property
    def gateway_address_v6(self) -> str:
        return str(self.subnet_v6[1])

    @property
    def gateway_host(self) -> Host:
        """The gateway's namespace (only with ``gateway_in_namespace=True``)."""
        if self._gateway_host is None:
            raise RuntimeError("the gateway runs in the root namespace of this lab")
        return self._gateway_host

    @property
    def processes(self) -> list[subprocess.Popen[Any]]:
        return list(self._procs)

    def _ns_name(self, role: str) -> str:
        return f"{PREFIX}{os.getpid()}x{self.id}-{role}"

    def _ensure_open(self) -> None:
        if not self._started or self._closed:
            raise RuntimeError("Lab is not running (use `with Lab() as lab:`)")

    # ----------------------------------------------------------------- lifecycle
    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.close()
        except Exception as cleanup_exc:
            if exc is None:
                raise
            warnings.warn(f"netns lab cleanup failed: {cleanup_exc}", stacklevel=2)

    def start(self) -> Lab:
        if self._started:
            raise RuntimeError("Lab already started")
        self._started = True
        _LIVE_LABS.add(self)
        try:
            with contextlib.suppress(NetnsError, subprocess.CalledProcessError):
                sweep_leftovers()
            self._setup()
        except BaseException:
            with contextlib.suppress(Exception):
                self.close()
            raise
        return self

    def _new_netns(self, role: str, *, dad: bool) -> str:
        name = self._ns_name(role)
        _cmd(["ip", "netns", "add", name])
        self.namespaces.append(name)
        settings = {"net.ipv6.conf.all.accept_dad": "0", "net.ipv6.conf.default.accept_dad": "0"}
        if not dad:  # the bridge namespace needs no IPv6 stack at all
            settings = {
                "net.ipv6.conf.all.disable_ipv6": "1",
                "net.ipv6.conf.default.disable_ipv6": "1",
            }
        _sysctl(name, settings)
        _cmd(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    def _setup(self) -> None:
        req4, req6 = self._requested
        self._lan = self._new_netns("lan", dad=False)
        _cmd(
            [
                *("ip", "-n", self._lan, "link", "add", "br0", "type", "bridge"),
                *("stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"),
            ]
        )
        _cmd(["ip", "-n", self._lan, "link", "set", "br0", "up"])
        if self.gateway_in_namespace:
            self._set_subnets(req4 or "198.18.0.0/24", req6 or "fd00:18::/64")
            gw_ns = self._new_netns("gw", dad=True)
            self._gw_ns, self._gw_dev = gw_ns, "eth0"
            self._attach(gw_ns, port="gw")
            self._configure_gateway()
            self._gateway_host = Host(
                self, "gateway", gw_ns, self.gateway_address_v4, self.gateway_address_v6
            )
        else:
            with _allocation_lock():
                if req4 is None or req6 is None:
                    v4, v6 = _subnets(_free_subnet_index())
                    req4, req6 = req4 or str(v4), req6 or str(v6)
                self._set_subnets(req4, req6)
                for net in (self.subnet_v4, self.subnet_v6):
                    _check_unrouted(net)
                dev = self._gw_dev = f"{PREFIX}{self.id}"
                _cmd(
                    [
                        *("ip", "link", "add", dev, "type", "veth"),
                        *("peer", "name", "gw", "netns", self._lan),
                    ]
                )
                self.gateway_interface = dev  # only now it is ours to delete
                _cmd(["ip", "link", "set", dev, "alias", f"{_ALIAS_TAG} pid={os.getpid()}"])
                # our own interface: usable IPv6 at once, no DAD on its link-local either
                for key, value in (("disable_ipv6", "0"), ("accept_dad", "0")):
                    Path(f"/proc/sys/net/ipv6/conf/{dev}/{key}").write_text(value)
                _cmd(["ip", "-n", self._lan, "link", "set", "gw", "master", "br0", "up"])
                self._configure_gateway()
        self._wait_ready(self._gw_ns, self._gw_dev)

    def _set_subnets(self, v4: str, v6: str) -> None:
        net4, net6 = ipaddress.IPv4Network(v4), ipaddress.IPv6Network(v6)
        if net4.prefixlen > 29 or net6.prefixlen > 120:
            raise ValueError("lab subnets must be at least /29 (IPv4) and /120 (IPv6)")
        _check_test_address(net4)
        _check_test_address(net6)
        self.subnet_v4, self.subnet_v6 = net4, net6
        self._used |= {net4[1], net6[1]}

    def _attach(self, netns: str, *, port: str) -> None:
        """veth: ``port`` on the lan bridge <-> ``eth0`` in ``netns``."""
        _cmd(
            [
                *("ip", "-n", self._lan, "link", "add", port, "type", "veth"),
                *("peer", "name", "eth0", "netns", netns),
            ]
        )
        _cmd(["ip", "-n", self._lan, "link", "set", port, "master", "br0", "up"])

    def _gw_ip(self, *args: str) -> None:
        ns = ["-n", self._gw_ns] if self._gw_ns else []
        _cmd(["ip", *ns, *args])

    def _configure_gateway(self) -> None:
        dev = self._gw_dev
        self._gw_ip(
            "addr", "add", f"{self.gateway_address_v4}/{self.subnet_v4.prefixlen}", "dev", dev
        )
        self._gw_ip(
            "-6", "addr", "add", f"{self.gateway_address_v6}/{self.subnet_v6.prefixlen}",
            "dev", dev, "nodad",
        )  # fmt: skip
        self._gw_ip("link", "set", dev, "up")

    def _wait_ready(self, netns: str | None, dev: str) -> None:
        """Wait until no IPv6 address on ``dev`` is tentative and the link is up."""
        deadline = time.monotonic() + self.ready_timeout
        while True:
            tentative = _ip_json(["-6", "addr", "show", "dev", dev, "tentative"], netns)
            link = _ip_json(["link", "show", "dev", dev], netns)
            up = bool(link) and "LOWER_UP" in link[0].get("flags", [])
            if up and not any(entry.get("addr_info") for entry in tentative):
                return
            if time.monotonic() > deadline:
                raise NetnsError(f"{dev} in {netns or 'root ns'} not ready: {tentative} {link}")
            time.sleep(0.02)

    def _pick(
        self, wanted: str | None, subnet: IPNetwork, pool: IPNetwork
    ) -> tuple[IPAddress, int]:
        """Resolve a host address; returns (address, prefix length to configure)."""
        if wanted is None:
            routed = [] if pool == subnet or self._gw_ns else _root_routes()
            for i in range(_FIRST_HOST, pool.num_addresses - 1):
                addr = pool[i]
                if addr not in self._used and not any(
                    r.version == addr.version and addr in r for r in routed
                ):
                    break
            else:
                raise NetnsError(f"no free address left in {pool}")
        else:
            addr = ipaddress.ip_address(wanted)
            if addr.version != subnet.version:
                raise ValueError(f"{wanted} is not an IPv{subnet.version} address")
            _check_test_address(addr)
            if addr in self._used:
                raise ValueError(f"{addr} is already used in this lab")
            if addr in (subnet.network_address, subnet.broadcast_address):
                raise ValueError(f"{addr} is the network/broadcast address of {subnet}")
        return addr, subnet.prefixlen if addr in subnet else subnet.max_prefixlen

    def add_host(
        self, name: str, *, v4: str | None = None, v6: str | None = None, public: bool = False
    ) -> Host:
        """Create a client host with its own namespace and addresses.

        Omitted addresses are auto-assigned: from the lab subnet (a "LAN" client), or with
        ``public=True`` from :data:`PUBLIC_V4`/:data:`PUBLIC_V6` (an "internet" client).
        Addresses outside the lab subnet (auto "public" ones or explicit ones such as
        ``203.0.113.7``) are configured as /32 (/128) with on-link host routes on both sides;
        in root mode the gateway-side route lives in the root namespace, so such an address
        must not be routed there yet (auto-assignment picks one that is not, under a lock that
        makes this safe for labs in parallel processes).
        """
        self._ensure_open()
        if not _LABEL_RE.match(name) or any(h.name == name for h in self.hosts):
            raise ValueError(f"invalid or duplicate host name {name!r}")
        root_mode = self._gw_ns is None
        with _allocation_lock() if root_mode else contextlib.nullcontext():
            pool4 = PUBLIC_V4 if public else self.subnet_v4
            pool6 = PUBLIC_V6 if public else self.subnet_v6
            addr4, plen4 = self._pick(v4, self.subnet_v4, pool4)
            addr6, plen6 = self._pick(v6, self.subnet_v6, pool6)
            if root_mode:  # outside addresses get root-namespace routes
                for addr, plen in ((addr4, plen4), (addr6, plen6)):
                    if plen == addr.max_prefixlen:
                        _check_unrouted(addr)
            self._used |= {addr4, addr6}
            host = self._create_host(name, addr4, plen4, addr6, plen6)
        self._wait_ready(host.netns, "eth0")
        return host

    def _create_host(
        self, name: str, addr4: IPAddress, plen4: int, addr6: IPAddress, plen6: int
    ) -> Host:
        index = len(self.hosts) + 1
        netns = self._new_netns(f"h{index}-{name}", dad=True)
        host = Host(self, name, netns, str(addr4), str(addr6))
        self.hosts.append(host)
        self._attach(netns, port=f"h{index}")
        _cmd(["ip", "-n", netns, "addr", "add", f"{addr4}/{plen4}", "dev", "eth0"])
        _cmd(["ip", "-n", netns, "-6", "addr", "add", f"{addr6}/{plen6}", "dev", "eth0", "nodad"])
        _cmd(["ip", "-n", netns, "link", "set", "eth0", "up"])
        for addr, plen, gw in (
            (addr4, plen4, self.gateway_address_v4),
            (addr6, plen6, self.gateway_address_v6),
        ):
            if plen == addr.max_prefixlen:  # outside the lab subnet: on-link host routes
                fam = f"-{addr.version}"
                _cmd(["ip", "-n", netns, fam, "route", "add", gw, "dev", "eth0"])
                self._gw_ip(fam, "route", "add", f"{addr}/{plen}", "dev", self._gw_dev)
        return host

    def close(self) -> None:
        """Kill processes, delete the root-side veth and all namespaces. Idempotent."""
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        for proc in reversed(self._procs):
            try:
                _stop_process(proc)
            except Exception as exc:
                errors.append(f"stopping PID {proc.pid}: {exc}")
        for ns in reversed(self.namespaces):
            try:
                _kill_netns_pids(ns)
            except Exception as exc:
                errors.append(f"killing processes in {ns}: {exc}")
        if self.gateway_interface:
            try:  # synchronous; a namespace deletion would remove it only asynchronously
                _delete_link(self.gateway_interface)
            except Exception as exc:
                errors.append(f"deleting {self.gateway_interface}: {exc}")
        for ns in reversed(self.namespaces):
            try:
                _delete_netns(ns)
            except Exception as exc:
                errors.append(str(exc))
        _LIVE_LABS.discard(self)
        if errors:
            raise NetnsError("netns lab cleanup incomplete:\n" + "\n".join(errors))


def _stop_process(proc: subprocess.Popen[Any], grace: float = 3.0) -> None:
    """SIGTERM the process group the harness created for ``proc`` (by its PID), then SIGKILL."""
    if proc.poll() is not None:
        return  # reaped; stragglers in the namespace are killed via `ip netns pids`
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)  # pgid == pid: start_new_session=True
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
    raise NetnsError(f"PID {proc.pid} survived SIGKILL")
