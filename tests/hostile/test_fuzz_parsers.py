"""Fuzzing (hypothesis, bounded) of the parsers that read hostile input: the session cookie
and the forwarding headers over the wire, and allowlist input through the CLI.

Whatever comes in: no 500, no forward of something that should be refused, no "failed;
refusing" (an addon hook that raised) in the gateway's log, and the CLI fails cleanly.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import socket
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import cli as gateway_cli
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread

PASSWORD = "correct-horse-battery-staple"
AUTH = f"""[auth]
initial_admin = "admin"
initial_admin_password = "{PASSWORD}"
[auth.bruteforce]
never_ban = []
free_attempts = 100000
"""
PRIVATE = '["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "127.0.0.0/8", "::1/128"]'
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)

# Header text: anything a client can put on one header line (CR, LF and NUL are the
# smuggling tests' business), including other control and latin-1 characters.
header_text = st.text(
    alphabet=st.characters(min_codepoint=1, max_codepoint=0xFF, blacklist_characters="\r\n"),
    max_size=200,
)


def _request(port: int, path: str, headers: list[tuple[str, str]]) -> int | None:
    """One request over a raw socket; the answer's status (None: no answer)."""
    head = f"GET {path} HTTP/1.1\r\nHost: cemm\r\n"
    data = head.encode() + b"".join(
        name.encode("latin-1") + b": " + value.encode("latin-1") + b"\r\n"
        for name, value in headers
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data + b"\r\n")
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    if not answer.startswith(b"HTTP/1.1 "):
        return None
    return int(answer[9:12])


def _seen(simulator: SimulatorThread, marker: str) -> list:
    return [r for r in simulator.sim.requests if marker in r.query]


def _no_addon_failures(gateway: GatewayProcess) -> None:
    """Checked after every example, so each fuzz test proves it on its own (a separate
    "the log is clean" test passes trivially when run alone or first)."""
    log = gateway.log()
    assert "failed; refusing" not in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]


# -- the session cookie -----------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_env(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayConfig, GatewayProcess, SimulatorThread, str]]:
    simulator = SimulatorThread()
    config = GatewayConfig(
        tmp_path_factory.mktemp("fuzz-cookie") / "gw",
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=AUTH,
    )
    gateway = GatewayProcess(config)
    response = httpx.post(
        config.url("/.gateway/api/login"), json={"username": "admin", "password": PASSWORD}
    )
    assert response.status_code == 200
    yield config, gateway, simulator, response.cookies["cemm_session"]
    gateway.close()
    simulator.close()


cookie_name = st.one_of(
    st.sampled_from(["cemm_session", "__Host-cemm_session", "CEMM_SESSION", "cemm_session "]),
    header_text.filter(lambda s: ";" not in s and "=" not in s),
)
cookie_pair = st.tuples(cookie_name, header_text.filter(lambda s: ";" not in s))


@given(
    pairs=st.lists(cookie_pair, max_size=6),
    raw=st.one_of(st.none(), header_text),
    with_valid=st.booleans(),
)
@FUZZ
def test_cookie_header(auth_env, pairs, raw, with_valid) -> None:
    config, gateway, simulator, token = auth_env
    marker = uuid.uuid4().hex
    parts = [f"{name}={value}" for name, value in pairs]
    if with_valid:
        parts.insert(len(parts) // 2, f"cemm_session={token}")
    value = raw if raw is not None else "; ".join(parts)
    status = _request(config.http_port, f"/_sim/echo?{marker}", [("Cookie", value)])
    assert status is not None, repr(value)
    assert status != 500, repr(value)
    if status == 200:
        # Only ever admitted with the real session in the header.
        assert token in value
        assert len(_seen(simulator, marker)) == 1
    else:
        assert status in (400, 401), status
        assert not _seen(simulator, marker)
    _no_addon_failures(gateway)


bearer = st.one_of(
    header_text,
    st.tuples(st.sampled_from(["Bearer", "bearer", "Basic", "Bearer  ", ""]), header_text).map(
        " ".join
    ),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.", max_size=80).map(
        lambda t: f"Bearer cgw_{t}"
    ),
)


@given(value=bearer)
@FUZZ
def test_authorization_header(auth_env, value) -> None:
    config, gateway, simulator, _ = auth_env
    marker = uuid.uuid4().hex
    status = _request(config.http_port, f"/_sim/echo?{marker}", [("Authorization", value)])
    assert status is not None, repr(value)
    assert status in (400, 401), (status, value)
    assert not _seen(simulator, marker)
    _no_addon_failures(gateway)


def test_a_non_utf8_bearer_token_is_a_401(auth_env) -> None:
    config, _, simulator, _ = auth_env
    marker = uuid.uuid4().hex
    status = _request(
        config.http_port, f"/_sim/echo?{marker}", [("Authorization", "Bearer cgw_\x80\xff")]
    )
    assert status == 401
    assert not _seen(simulator, marker)


# Found by the fuzzer above: such a cookie made the session check raise (a 500 and a
# traceback per request).
def test_a_non_utf8_session_cookie_is_refused_as_invalid(auth_env) -> None:
    config, _, simulator, _ = auth_env
    marker = uuid.uuid4().hex
    status = _request(config.http_port, f"/_sim/echo?{marker}", [("Cookie", "cemm_session=\x80")])
    assert not _seen(simulator, marker)
    assert status == 401, status


# -- forwarding headers from a trusted proxy ---------------------------------------------


@pytest.fixture(scope="module")
def proxy_env(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayConfig, GatewayProcess, SimulatorThread]]:
    simulator = SimulatorThread()
    config = GatewayConfig(
        tmp_path_factory.mktemp("fuzz-forwarded") / "gw",
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        # The test client is the trusted proxy; private clients it names need no login.
        extra='[allowlist]\ntrusted_proxies = ["127.0.0.1"]\n'
        f"[auth]\ntrusted_networks = {PRIVATE}\n",
    )
    gateway = GatewayProcess(config)
    yield config, gateway, simulator
    gateway.close()
    simulator.close()


ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
address = st.one_of(
    ipv4,
    ipv6,
    st.sampled_from(["10.1.2.3", "192.168.1.20", "127.0.0.1", "203.0.113.9", "fd00::5", "::1"]),
)
node = st.one_of(
    address,
    ipv6.map(lambda a: f"[{a}]"),
    st.tuples(ipv4, st.integers(0, 70000)).map(lambda t: f"{t[0]}:{t[1]}"),
    st.tuples(ipv6, st.integers(0, 70000)).map(lambda t: f"[{t[0]}]:{t[1]}"),
    st.sampled_from(["unknown", "_hidden", '"[::1]:80"', '"10.0.0.1"', "", "[10.0.0.1]"]),
    header_text.filter(lambda s: "," not in s and ";" not in s),
)
forwarded_element = st.lists(
    st.tuples(
        st.sampled_from(["for", "proto", "host", "by", "For", "x", ""]),
        st.one_of(node, st.sampled_from(["http", "https", "ftp"])),
    ),
    max_size=4,
).map(lambda pairs: ";".join(f"{k}={v}" for k, v in pairs))
forwarded = st.lists(forwarded_element, max_size=4).map(", ".join)
x_forwarded_for = st.lists(node, max_size=5).map(
    lambda nodes: ", ".join(n.strip("[]") if n.count(":") > 1 else n for n in nodes)
)


@given(
    fwd=st.one_of(st.none(), forwarded, header_text),
    xff=st.one_of(st.none(), x_forwarded_for, header_text),
    proto=st.one_of(st.none(), st.sampled_from(["http", "https", "HTTPS", "gopher"]), header_text),
    host=st.one_of(st.none(), st.sampled_from(["cemm.example.org", "a:1", "[::1]:8"]), header_text),
    repeat=st.booleans(),
)
@FUZZ
def test_forwarding_headers_from_a_trusted_proxy(proxy_env, fwd, xff, proto, host, repeat):
    config, gateway, simulator = proxy_env
    marker = uuid.uuid4().hex
    headers = []
    for name, value in (
        ("Forwarded", fwd),
        ("X-Forwarded-For", xff),
        ("X-Forwarded-Proto", proto),
        ("X-Forwarded-Host", host),
    ):
        if value is not None:
            headers.append((name, value))
            if repeat:
                headers.append((name, value))
    status = _request(config.http_port, f"/_sim/echo?{marker}", headers)
    assert status is not None
    assert status != 500
    seen = _seen(simulator, marker)
    if status == 200:
        assert len(seen) == 1
        names = [name for name, _ in seen[0].headers]
        # What reaches the CEMM is the gateway's own account, never the client's text.
        assert "forwarded" not in names
        assert names.count("x-forwarded-for") == 1
        ipaddress.ip_address(seen[0].header("x-forwarded-for"))
    else:
        assert status in (400, 401, 403), status
        assert not seen
    _no_addon_failures(gateway)


# -- allowlist input to the CLI --------------------------------------------------------


@pytest.fixture(scope="module")
def cli_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fuzz-cli")
    path = directory / "gateway.toml"
    path.write_text(f'data_dir = "{directory / "data"}"\n[upstream]\nhost = "127.0.0.1"\n')
    return path


octet = st.integers(-1, 300).map(str)
near_networks = st.one_of(
    st.tuples(octet, octet, octet, octet).map(".".join),
    st.tuples(octet, octet, octet, octet, st.integers(-1, 40)).map(
        lambda t: ".".join(t[:4]) + f"/{t[4]}"
    ),
    st.tuples(ipv6, st.integers(-1, 140)).map(lambda t: f"{t[0]}/{t[1]}"),
    ipv6.map(lambda a: f"[{a}]"),
    ipv6.map(lambda a: f"{a}%eth0"),
    st.sampled_from(
        [
            "10.0.0.300/24",
            "fe80::/129",
            "cemm.example.org",
            "localhost",
            "0/0",
            "::/0",
            "1.2.3.4/",
            "/24",
            "1.2.3.4/24/8",
            " 10.0.0.1",
            "10.0.0.0/8 ",
            "\u0661\u0660.0.0.1",  # Arabic-Indic digits
            "0x0a.0.0.1",
            "010.0.0.1",
            "10.0.0.1/255.0.0.0",
            "::ffff:10.0.0.1",
            "-10.0.0.1",
        ]
    ),
    st.text(max_size=60),
)


def _run_cli(*argv: str) -> tuple[int, str]:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = gateway_cli.main(list(argv))
        except SystemExit as exit_:  # argparse's own refusals
            code = exit_.code if isinstance(exit_.code, int) else 2
    return code, stderr.getvalue()


def _valid(text: str) -> bool:
    try:
        ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return False
    return True


@given(text=near_networks)
@settings(max_examples=300, deadline=None, derandomize=True)
def test_allowlist_input_to_the_cli(cli_config: Path, text: str) -> None:
    if "\0" in text:
        return  # not something a shell can pass as an argument
    before = _entries(cli_config)
    code, stderr = _run_cli("allow", "add", text, "--label", "fuzz", "--config", str(cli_config))
    assert "Traceback" not in stderr
    if code == 0:
        assert _valid(text), f"accepted {text!r}"
        _run_cli("allow", "remove", text, "--config", str(cli_config))
    else:
        assert stderr.strip(), f"refused {text!r} without a word"
        assert _entries(cli_config) == before, f"refused {text!r} but wrote something"


def _entries(config: Path) -> int:
    database = config.parent / "data" / "gateway.db"
    if not database.exists():
        return 0
    with contextlib.closing(sqlite3.connect(database)) as db:
        return int(db.execute("SELECT count(*) FROM allowlist_entry").fetchone()[0])
