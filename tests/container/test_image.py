"""The Docker image, built with podman and run the way compose.yaml runs it.

The CEMM simulator runs in the test process on loopback; the gateway container shares
the host's network (compose.yaml's default), listens on free loopback ports given through
``CEMM_GATEWAY_*`` variables, and takes its first admin password from a secret. The
WireGuard test runs its container in a network namespace of its own (``--network none``),
so the interface and its firewall rule never touch the host's network.

Needs root, podman and runc (and debootstrap the first time, for the base image); skipped
without them, except in CI. The first build on a machine takes about three minutes (base
image and dependencies), later ones reuse podman's layer cache.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import time
import tomllib
import uuid
from collections.abc import Iterator

import httpx
import pytest
from packaging.markers import Marker
from websockets.sync.client import connect
from websockets.typing import Origin

from gateway.netutil import free_port
from tests.container.podman import (
    ROOT,
    Build,
    Deployment,
    build_image,
    podman,
    require_podman,
    run_once,
    stop_grace_seconds,
    sweep_leftovers,
)
from tests.support.gateway import SimulatorThread

pytestmark = [pytest.mark.root, pytest.mark.timeout(1200)]

ADMIN_PASSWORD = "container-" + uuid.uuid4().hex
ANNA_PASSWORD = "violet-" + uuid.uuid4().hex
SIZE_LIMIT = 250_000_000  # the target for the final image
# NET_BIND_SERVICE is capability 10, NET_ADMIN 12 (linux/capability.h).
ALLOWED_CAPABILITIES = (1 << 10) | (1 << 12)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Build:
    require_podman()
    sweep_leftovers()
    build = build_image(tmp_path_factory.mktemp("build") / "build.log")
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"\ncontainer image {build.image}: {build.size / 1e6:.0f} MB, built in "
            f"{build.build_seconds:.0f} s (base image step {build.base_seconds:.0f} s)"
        )
    return build


@pytest.fixture(scope="module")
def image(built: Build) -> str:
    return built.image


@pytest.fixture(scope="module")
def cemm() -> Iterator[SimulatorThread]:
    simulator = SimulatorThread()
    yield simulator
    simulator.close()


class Ports:
    def __init__(self) -> None:
        self.http = free_port()
        self.ws = free_port()
        self.admin = free_port()

    def url(self, path: str, port: str = "http", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{getattr(self, port)}{path}"

    def env(self, cemm: SimulatorThread) -> dict[str, str]:
        return {
            "CEMM_GATEWAY_UPSTREAM__HOST": "127.0.0.1",
            "CEMM_GATEWAY_UPSTREAM__HTTP_PORT": str(cemm.http_port),
            "CEMM_GATEWAY_UPSTREAM__WS_PORT": str(cemm.ws_port),
            "CEMM_GATEWAY_LISTEN__HOST": "127.0.0.1",
            "CEMM_GATEWAY_LISTEN__HTTP_PORT": str(self.http),
            "CEMM_GATEWAY_LISTEN__WS_PORT": str(self.ws),
            "CEMM_GATEWAY_LISTEN__ADMIN_PORT": str(self.admin),
            "CEMM_GATEWAY_RELOAD_INTERVAL": "0.1",
        }


@pytest.fixture(scope="module")
def ports() -> Ports:
    return Ports()


@pytest.fixture(scope="module")
def deployment(image: str, cemm: SimulatorThread, ports: Ports) -> Iterator[Deployment]:
    """The compose.yaml set-up: host network, secret, locked down, a volume on /data."""
    deployment = Deployment(image, ports.env(cemm), admin_password=ADMIN_PASSWORD)
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.close()


def login(ports: Ports, username: str, password: str, scheme: str = "http") -> str:
    """A JSON login; the session cookie as a Cookie header."""
    response = httpx.post(
        ports.url("/.gateway/api/login", scheme=scheme),
        json={"username": username, "password": password},
        timeout=10,
        verify=False,
    )
    assert response.status_code == 200, response.text
    # "__Host-cemm_session" over HTTPS, "cemm_session" over plain HTTP.
    [(name, value)] = [(c.name, c.value) for c in response.cookies.jar if "cemm_session" in c.name]
    return f"{name}={value}"


def fetch_through(ports: Ports, cemm: SimulatorThread, cookie: str | None) -> int:
    """A request to the CEMM through the gateway; its status, and whether the CEMM saw it."""
    marker = f"marker={uuid.uuid4().hex}"
    headers = {"Accept": "application/json"}
    if cookie:
        headers["Cookie"] = cookie
    response = httpx.get(ports.url(f"/_sim/echo?{marker}"), headers=headers, timeout=10)
    reached = any(r.query == marker for r in cemm.sim.requests)
    assert reached == (response.status_code == 200), (response.status_code, reached)
    return response.status_code


def _locked_versions() -> dict[str, str]:
    """Name -> version of every runtime.lock entry whose marker holds on Linux."""
    pinned: dict[str, str] = {}
    for line in (ROOT / "requirements" / "runtime.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+))?", line)
        if not match:
            continue
        name, version, marker = match.groups()
        if marker and not Marker(marker.strip()).evaluate(
            {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"}
        ):
            continue
        pinned[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pinned


# -- the image -----------------------------------------------------------------------------
def test_image_is_small_and_ships_only_what_runs(built: Build) -> None:
    assert built.size < SIZE_LIMIT, f"image is {built.size / 1e6:.0f} MB, target < 250 MB"
    config = json.loads(podman("image", "inspect", built.image, check=True).stdout)[0]
    assert config["Config"]["Entrypoint"] == ["cemm-gateway"]  # exec form: Python is PID 1
    assert config["Config"]["Cmd"] == ["run"]
    assert list(config["Config"]["Volumes"]) == ["/data"]
    assert config.get("User", "") in ("", "root", "0")
    assert config["Healthcheck"]["Test"] == ["CMD", "/usr/local/bin/cemm-gateway-healthcheck"]

    probe = run_once(
        built.image,
        "-c",
        "for tool in gcc cc make pip pip3 strip curl; do command -v $tool; done; "
        "ls -d /root/.cache /opt/build /src /opt/project 2>/dev/null; "
        "for tool in wg wireguard-go ip nft python3; do command -v $tool >/dev/null "
        "|| echo missing $tool; done; echo done",
    )
    assert probe.stdout.strip() == "done", f"unexpected in the image:\n{probe.stdout}"

    installed = run_once(
        built.image,
        "-c",
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))",
        entrypoint="python3",
    )
    assert installed.returncode == 0, installed.stderr
    found = {
        re.sub(r"[-_.]+", "-", name).lower(): version
        for name, version in json.loads(installed.stdout).items()
    }
    assert found.pop("cemm-gateway") == "0.1.0"
    assert found == _locked_versions(), "the image must hold exactly requirements/runtime.lock"


def test_labels_say_what_it_is_and_tz_is_honoured(built: Build) -> None:
    labels = json.loads(
        podman("image", "inspect", "--format", "{{json .Labels}}", built.image, check=True).stdout
    )
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert labels["org.opencontainers.image.version"] == version
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.strip()
    assert labels["org.opencontainers.image.revision"].removesuffix("-dirty") == head
    created = dt.datetime.fromisoformat(labels["org.opencontainers.image.created"])
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 3600
    assert labels["org.opencontainers.image.title"] == "cemm-gateway"

    zone = run_once(
        built.image,
        "-c",
        "import time; print(time.strftime('%Z', time.localtime(0)))",
        entrypoint="python3",
        env={"TZ": "Europe/Amsterdam"},
    )
    assert zone.stdout.strip() == "CET", zone.stdout + zone.stderr


# -- running it as compose.yaml does ------------------------------------------------------------
def test_becomes_healthy_and_admits_only_sessions(
    deployment: Deployment, ports: Ports, cemm: SimulatorThread
) -> None:
    deployment.wait_healthy()
    assert deployment.inspect("{{.State.Health.Status}}") == "healthy"

    assert fetch_through(ports, cemm, None) == 401
    navigation = httpx.get(
        ports.url("/"), headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}, timeout=10
    )
    assert navigation.status_code == 302
    assert navigation.headers["location"].startswith("/.gateway/login")
    # The compiled catalogs are in the image: a Dutch browser gets the login page in Dutch.
    dutch = httpx.get(
        ports.url("/.gateway/login"), headers={"Accept-Language": "nl-NL,nl;q=0.9"}, timeout=10
    )
    assert dutch.status_code == 200 and dutch.headers["content-language"] == "nl"
    assert '<html lang="nl">' in dutch.text and ">Inloggen<" in dutch.text

    # The first admin's password came from the secret (compose.yaml's admin_password).
    cookie = login(ports, "admin", ADMIN_PASSWORD)
    assert fetch_through(ports, cemm, cookie) == 200
    with connect(
        ports.url("/ws", port="ws").replace("http://", "ws://"),
        origin=Origin(ports.url("")),
        additional_headers={"Cookie": cookie},
        open_timeout=10,
    ) as live:
        assert '"reading"' in live.recv(timeout=5)
    assert "Password:" not in deployment.logs()  # nothing generated, nothing printed


def test_runs_read_only_with_two_capabilities(deployment: Deployment) -> None:
    deployment.ensure_running()
    status = dict(
        line.split(":\t", 1)
        for line in deployment.exec("cat", "/proc/1/status").stdout.splitlines()
    )
    assert status["Uid"].split()[0] == "0"  # root in the container, with almost nothing
    for field in ("CapEff", "CapPrm", "CapBnd"):
        assert int(status[field], 16) == ALLOWED_CAPABILITIES, (field, status[field])
    assert int(status["CapInh"], 16) == 0
    assert int(status["CapAmb"], 16) == 0
    assert status["NoNewPrivs"].strip() == "1"
    assert deployment.exec("cat", "/proc/1/cmdline").stdout.split("\0")[:2] == [
        "/opt/venv/bin/python",
        "/opt/venv/bin/cemm-gateway",
    ]

    for path in ("/probe", "/opt/venv/probe", "/etc/probe", "/var/tmp/probe"):
        write = deployment.exec("touch", path)
        assert write.returncode != 0 and "Read-only file system" in write.stderr, path
    for path in ("/data/probe", "/run/probe", "/tmp/probe"):
        assert deployment.exec("touch", path).returncode == 0, path
        deployment.exec("rm", path)
    mounts = {
        fields[1]: fields[2]
        for fields in (
            line.split() for line in deployment.exec("cat", "/proc/mounts").stdout.splitlines()
        )
    }
    assert mounts["/run"] == "tmpfs" and mounts["/tmp"] == "tmpfs"
    assert mounts["/data"] != "tmpfs"
    assert deployment.exec("stat", "-c", "%a", "/data").stdout.strip() == "700"


def test_data_survives_a_new_container(
    deployment: Deployment, ports: Ports, cemm: SimulatorThread
) -> None:
    deployment.ensure_running()
    cookie = login(ports, "admin", ADMIN_PASSWORD)
    deployment.cli("user", "add", "anna", "--role", "user", "--password-stdin", input=ANNA_PASSWORD)
    deployment.cli("allow", "add", "203.0.113.7", "--label", "office")

    code, _ = deployment.stop(stop_grace_seconds())
    assert code == 0
    old = deployment.container
    deployment.remove()
    assert podman("container", "exists", str(old)).returncode != 0
    deployment.start()
    deployment.wait_healthy()

    names = {user["name"] for user in json.loads(deployment.cli("user", "list", "--json").stdout)}
    assert names == {"admin", "anna"}
    entries = json.loads(deployment.cli("allow", "list", "--json").stdout)["entries"]
    assert [(e["network"], e["label"]) for e in entries] == [("203.0.113.7/32", "office")]
    # Password hashes and sessions lived in /data: the old login still works.
    assert fetch_through(ports, cemm, login(ports, "anna", ANNA_PASSWORD)) == 200
    assert fetch_through(ports, cemm, cookie) == 200


def test_sigterm_stops_it_within_five_seconds(deployment: Deployment) -> None:
    deployment.ensure_running()
    code, seconds = deployment.stop(stop_grace_seconds())
    assert code == 0, deployment.logs()[-2000:]
    assert seconds < 5, f"took {seconds:.1f} s"
    assert "stopping" in deployment.logs()


def test_first_password_on_the_console_and_healthy_over_https(
    image: str, cemm: SimulatorThread
) -> None:
    """Without the secret the password is printed once; with TLS the healthcheck copes."""
    ports = Ports()
    env = {**ports.env(cemm), "CEMM_GATEWAY_TLS__ENABLED": "true"}
    deployment = Deployment(image, env)
    try:
        deployment.start()
        deployment.wait_healthy()
        printed = re.findall(r"Password: (\S+)", deployment.logs())
        assert len(printed) == 1
        health = podman("inspect", "--format", "{{json .State.Health}}", str(deployment.container))
        assert '"healthy' in health.stdout
        cookie = login(ports, "admin", printed[0], scheme="https")
        response = httpx.get(
            ports.url("/_sim/echo", scheme="https"),
            headers={"Cookie": cookie, "Accept": "application/json"},
            timeout=10,
            verify=False,
        )
        assert response.status_code == 200
        # A second start prints nothing: the password was shown once.
        deployment.stop()
        deployment.remove()
        deployment.start()
        deployment.wait_healthy()
        assert "Password:" not in deployment.logs()
    finally:
        deployment.close()


# -- WireGuard ----------------------------------------------------------------------------------
def test_wireguard_comes_up_with_wireguard_go(image: str) -> None:
    env = {
        "CEMM_GATEWAY_UPSTREAM__HOST": "127.0.0.1",
        "CEMM_GATEWAY_WIREGUARD__ENABLED": "true",
        "CEMM_GATEWAY_WIREGUARD__ENDPOINT": "home.example.org:51820",
    }
    # Its own network namespace: wg0 and the nftables rule stay inside the container.
    deployment = Deployment(image, env, network="none")
    try:
        deployment.start()
        deployment.wait_healthy()
        _wait_for_interface(deployment)
        assert deployment.exec("wg", "show", "wg0", "listen-port").stdout.strip() == "51820"
        assert "wireguard-go" in _processes(deployment)
        added = deployment.cli("peer", "add", "phone").stdout
        assert "[Interface]" in added and "Endpoint = home.example.org:51820" in added
        _wait_for_peers(deployment, 1)
        key = deployment.exec("wg", "show", "wg0", "peers").stdout.split()

        # The peer outlives the container; the new one restores it on wg0.
        deployment.stop()
        deployment.remove()
        deployment.start()
        deployment.wait_healthy()
        _wait_for_interface(deployment)
        assert "phone" in deployment.cli("peer", "list").stdout
        _wait_for_peers(deployment, 1)
        assert deployment.exec("wg", "show", "wg0", "peers").stdout.split() == key
    finally:
        deployment.close()


def _processes(deployment: Deployment) -> str:
    return deployment.exec("sh", "-c", "cat /proc/[0-9]*/comm").stdout


def _wait_for_interface(deployment: Deployment, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        link = deployment.exec("ip", "-br", "link", "show", "wg0")
        if link.returncode == 0 and ("UP" in link.stdout or "UNKNOWN" in link.stdout):
            return
        time.sleep(0.5)
    raise AssertionError(f"wg0 did not come up:\n{deployment.logs()[-3000:]}")


def _wait_for_peers(deployment: Deployment, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(deployment.exec("wg", "show", "wg0", "peers").stdout.split()) == count:
            return
        time.sleep(0.5)
    raise AssertionError(f"wg0 does not have {count} peer(s):\n{deployment.logs()[-3000:]}")
