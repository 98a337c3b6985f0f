"""The systems under test, each with a simulated CEMM of its own behind it.

- ``direct``: the simulator itself.
- ``gateway``: cemm-gateway with every check on (allowlist + session cookie), plain HTTP.
- ``gateway-tls``: the same with ``[tls] enabled`` (self-signed), if this version has it.
- ``gateway-noauth``: the same with ``[auth] trusted_networks`` = loopback (no session
  check), for the issue-4 auth-overhead ratio.
- ``mitmdump``: bare ``mitmdump`` in reverse mode, same mitmproxy version, default addons.
- ``lean``: a plain mitmproxy ``Master`` with the minimal addons and a cookie check
  (:mod:`bench.lean_master`), the floor the gateway's addon chain is measured against.
- ``nginx`` / ``nginx-auth``: Debian's nginx as a plain reverse proxy, and with
  ``auth_basic`` over a bcrypt (cost 10) htpasswd.

Every simulator runs with ``page_ws_port`` set to its system's WebSocket port, so its page
dials the live data through the system in front of it.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import PYTHON, ROOT, Procs, free_port, wait_until

PASSWORD = "Correct-horse-staple-7"
USER = "bench"


@dataclass
class Simulator:
    process: subprocess.Popen[bytes]
    http_port: int
    ws_port: int


@dataclass
class System:
    key: str
    label: str
    http_port: int
    ws_port: int | None
    sim: Simulator
    proxy: subprocess.Popen[bytes] | None
    headers: dict[str, str] = field(default_factory=dict)
    tls: bool = False
    cookie: tuple[str, str] | None = None
    note: str = ""
    restart: Callable[[], float] | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://127.0.0.1:{self.http_port}{path}"

    def ws_url(self, path: str = "/ws") -> str | None:
        if self.ws_port is None:
            return None
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.ws_port}{path}"

    @property
    def pids(self) -> list[int]:
        """The processes whose memory counts for this system (the proxy, or the device)."""
        return [self.proxy.pid] if self.proxy is not None else [self.sim.process.pid]


def http_get(
    port: int,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    tls: bool = False,
    timeout: float = 2.0,
) -> tuple[int, bytes]:
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _alive(process: subprocess.Popen[bytes], procs: Procs, name: str) -> None:
    if process.poll() is not None:
        log = (procs.logdir / f"{name}.log").read_text(errors="replace").strip()
        raise RuntimeError(f"{name} exited with {process.returncode}: {log[-300:]}")


def start_simulator(procs: Procs, name: str, page_ws_port: int | None) -> Simulator:
    http_port, ws_port = free_port(), free_port()
    argv = [PYTHON, "-m", "bench.simulator", "--http-port", str(http_port)]
    argv += ["--ws-port", str(ws_port), "--interval", "1"]
    if page_ws_port is not None:
        argv += ["--page-ws-port", str(page_ws_port)]
    process = procs.start(f"sim-{name}", argv)

    def ready() -> bool:
        _alive(process, procs, f"sim-{name}")
        return http_get(http_port, "/api/v1/public/cemm")[0] == 200

    wait_until(ready, 20)
    return Simulator(process, http_port, ws_port)


# -- the gateway ------------------------------------------------------------------------


def tls_available() -> bool:
    from gateway.settings import Settings

    return "tls" in Settings.model_fields


def gateway_config(
    directory: Path,
    sim: Simulator,
    http_port: int,
    ws_port: int,
    admin_port: int,
    *,
    auth: bool = True,
    tls: bool = False,
    extra: str = "",
) -> Path:
    """The configuration file; ``extra``: more TOML sections, appended as they are."""
    directory.mkdir(parents=True, exist_ok=True)
    text = (
        f'data_dir = "{directory / "data"}"\n'
        "[upstream]\n"
        'host = "127.0.0.1"\n'
        f"http_port = {sim.http_port}\n"
        f"ws_port = {sim.ws_port}\n"
        "[listen]\n"
        'host = "127.0.0.1"\n'
        f"http_port = {http_port}\nws_port = {ws_port}\nadmin_port = {admin_port}\n"
        "[auth]\n"
        f'initial_admin = "{USER}"\ninitial_admin_password = "{PASSWORD}"\n'
    )
    if not auth:
        text += 'trusted_networks = ["127.0.0.0/8", "::1/128"]\n'
    if tls:
        text += "[tls]\nenabled = true\n"
    text += extra
    path = directory / "gateway.toml"
    path.write_text(text)
    return path


def gateway_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CEMM_GATEWAY_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def login(port: int, *, tls: bool = False) -> tuple[str, str]:
    """A JSON login; the session cookie's (name, value)."""
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=30, context=context
        )
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"username": USER, "password": PASSWORD})
    connection.request(
        "POST", "/.gateway/api/login", body, headers={"Content-Type": "application/json"}
    )
    response = connection.getresponse()
    response.read()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"login answered {response.status}")
    for header, value in response.getheaders():
        if header.lower() == "set-cookie":
            name, _, rest = value.partition("=")
            if "cemm_session" in name:
                return name.strip(), rest.split(";", 1)[0]
    raise RuntimeError("login set no session cookie")


def start_gateway(
    procs: Procs,
    workdir: Path,
    key: str,
    *,
    auth: bool = True,
    tls: bool = False,
    module: str = "gateway",
    directory: str | None = None,
) -> System:
    """``key``'s gateway, its configuration and data in ``workdir/directory`` (default:
    ``workdir/key``)."""
    http_port, ws_port, admin_port = free_port(), free_port(), free_port()
    sim = start_simulator(procs, key, ws_port)
    config = gateway_config(
        workdir / (directory or key), sim, http_port, ws_port, admin_port, auth=auth, tls=tls
    )
    argv = [PYTHON, "-m", module, "run", "--config", str(config)]

    process = procs.start(key, argv, env=gateway_env())

    def ready() -> bool:
        _alive(process, procs, key)
        return http_get(admin_port, "/healthz", tls=tls)[0] == 200

    wait_until(ready, 60)
    headers: dict[str, str] = {}
    cookie = None
    if auth:
        cookie = login(http_port, tls=tls)
        headers["Cookie"] = f"{cookie[0]}={cookie[1]}"
    status = http_get(http_port, "/api/v1/public/cemm", headers, tls=tls)[0]
    if status != 200:
        raise RuntimeError(f"{key}: a request with the session answered {status}")
    label = {
        "gateway": "gateway (allowlist + session)",
        "gateway-tls": "gateway, TLS (allowlist + session)",
        "gateway-noauth": "gateway, auth off (trusted network)",
        "gateway-unchained": "gateway, each addon registered on its own (diagnostic)",
    }[key]
    return System(key, label, http_port, ws_port, sim, process, headers, tls, cookie)


# -- mitmproxy references -------------------------------------------------------------


def mitmdump_argv(workdir: Path, sim: Simulator, http_port: int, ws_port: int) -> list[str]:
    mitmdump = str(ROOT / ".venv" / "bin" / "mitmdump")
    if not Path(mitmdump).exists():
        mitmdump = shutil.which("mitmdump") or "mitmdump"
    argv = [mitmdump, "-q", "--set", f"confdir={workdir / 'mitmdump-conf'}"]
    argv += ["--mode", f"reverse:http://127.0.0.1:{sim.http_port}@127.0.0.1:{http_port}"]
    argv += ["--mode", f"reverse:http://127.0.0.1:{sim.ws_port}@127.0.0.1:{ws_port}"]
    return argv


def start_mitmdump(procs: Procs, workdir: Path) -> System:
    http_port, ws_port = free_port(), free_port()
    sim = start_simulator(procs, "mitmdump", ws_port)
    process = procs.start("mitmdump", mitmdump_argv(workdir, sim, http_port, ws_port))

    def ready() -> bool:
        _alive(process, procs, "mitmdump")
        return http_get(http_port, "/api/v1/public/cemm")[0] == 200

    wait_until(ready, 60)
    return System("mitmdump", "bare mitmdump (default addons)", http_port, ws_port, sim, process)


LEAN_VARIANTS = {
    "lean": ([], "lean mitmproxy Master + cookie check"),
    "lean-noop10": (["--noop-addons", "10"], "lean + 10 no-op addons (diagnostic)"),
    "lean-stream": (["--stream"], "lean + streaming every flow (diagnostic)"),
}


def start_lean(procs: Procs, workdir: Path, key: str = "lean") -> System:
    extra, label = LEAN_VARIANTS[key]
    http_port, ws_port = free_port(), free_port()
    sim = start_simulator(procs, key, ws_port)
    cookie = ("cemm_session", base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="))
    argv = [PYTHON, "-m", "bench.lean_master", "--web", f"{http_port}:{sim.http_port}"]
    argv += ["--ws", f"{ws_port}:{sim.ws_port}", f"--cookie={cookie[1]}"]  # may start with -
    argv += ["--confdir", str(workdir / "lean-conf"), *extra]
    process = procs.start(key, argv, env={"PYTHONPATH": str(ROOT)})
    headers = {"Cookie": f"{cookie[0]}={cookie[1]}"}

    def ready() -> bool:
        _alive(process, procs, key)
        return http_get(http_port, "/api/v1/public/cemm", headers)[0] == 200

    wait_until(ready, 60)
    return System(
        key,
        label,
        http_port,
        ws_port,
        sim,
        process,
        headers,
        cookie=cookie,
    )


# -- nginx ----------------------------------------------------------------------------

NGINX_CONF = """\
worker_processes auto;
worker_rlimit_nofile 16384;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; "" ""; }}
    upstream cemm_web {{ server 127.0.0.1:{sim_http}; keepalive 32; }}
    upstream cemm_ws {{ server 127.0.0.1:{sim_ws}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{http_port};
        {auth}
        location / {{
            proxy_pass http://cemm_web;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
        }}
    }}
    server {{
        listen 127.0.0.1:{ws_port};
        {auth}
        location / {{
            proxy_pass http://cemm_ws;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 3600s;
        }}
    }}
}}
"""


def tool_path(name: str) -> str | None:
    """Where an installed program is: on PATH, or in the system directories a user's PATH
    may leave out (nginx and nft live in /usr/sbin)."""
    return shutil.which(
        name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    )


def nginx_argv(
    workdir: Path, key: str, sim: Simulator, http_port: int, ws_port: int, *, auth: bool
) -> tuple[list[str], dict[str, str]]:
    """Configuration in a prefix of its own; the command line and the client's headers."""
    binary = tool_path("nginx")
    if binary is None:
        raise RuntimeError("nginx is not installed")
    prefix = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=workdir))
    (prefix / "tmp").mkdir()
    # Workers run as nobody when the master is root: they must read what is here.
    workdir.chmod(0o711)
    prefix.chmod(0o755)
    (prefix / "tmp").chmod(0o755)
    headers: dict[str, str] = {}
    auth_lines = ""
    if auth:
        htpasswd = shutil.which("htpasswd")
        if htpasswd is None:
            raise RuntimeError("htpasswd (apache2-utils) is not installed")
        subprocess.run(
            [htpasswd, "-B", "-C", "10", "-b", "-c", str(prefix / "htpasswd"), USER, PASSWORD],
            check=True,
            capture_output=True,
        )
        (prefix / "htpasswd").chmod(0o644)
        auth_lines = f'auth_basic "CEMM"; auth_basic_user_file {prefix}/htpasswd;'
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    (prefix / "nginx.conf").write_text(
        NGINX_CONF.format(
            prefix=prefix,
            sim_http=sim.http_port,
            sim_ws=sim.ws_port,
            http_port=http_port,
            ws_port=ws_port,
            auth=auth_lines,
        )
    )
    argv = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e"]
    argv += [str(prefix / "error.log"), "-g", "daemon off;"]
    return argv, headers


def start_nginx(procs: Procs, workdir: Path, *, auth: bool) -> System:
    key = "nginx-auth" if auth else "nginx"
    http_port, ws_port = free_port(), free_port()
    sim = start_simulator(procs, key, ws_port)
    argv, headers = nginx_argv(workdir, key, sim, http_port, ws_port, auth=auth)
    process = procs.start(key, argv)

    def ready() -> bool:
        _alive(process, procs, key)
        return http_get(http_port, "/api/v1/public/cemm", headers)[0] == 200

    wait_until(ready, 30)
    label = "nginx + auth_basic (bcrypt cost 10)" if auth else "nginx (plain reverse proxy)"
    return System(key, label, http_port, ws_port, sim, process, headers)


def start_direct(procs: Procs) -> System:
    sim = start_simulator(procs, "direct", None)
    return System("direct", "direct to the simulator", sim.http_port, sim.ws_port, sim, None)


def time_to_serving(
    procs: Procs, name: str, argv: list[str], port: int, headers: dict[str, str], *, env=None
) -> tuple[float, subprocess.Popen[bytes]]:
    """Seconds from spawning ``argv`` to its first 200 for a proxied request."""
    started = time.monotonic()
    process = procs.start(name, argv, env=env)

    def serving() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        return http_get(port, "/api/v1/public/cemm", headers, timeout=1.0)[0] == 200

    deadline = started + 60
    while True:
        try:
            if serving():
                return time.monotonic() - started, process
        except RuntimeError:
            raise
        except Exception:  # not listening yet
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not serve within 60 s")
        time.sleep(0.005)
