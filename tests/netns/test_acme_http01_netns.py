"""ACME HTTP-01 with the allowlist in force, the authority on an address of its own
(network namespaces, root only).

Pebble and its DNS stand-in run inside a lab host (tests/support/netns.py) whose address,
``203.0.113.x``, is outside the gateway's allowlist (loopback only); the DNS stand-in
resolves the domain to the gateway's lab address, so Pebble's validator connects from
that outside address, and issuance works only through the HTTP-01 window. The gateway runs
in the test's own namespace; the test's own checks come from loopback (allowlisted).

The first order is held the moment its token is on the challenge board (the window is
open, Pebble not yet asked to validate): from Pebble's address, every request but
``GET /.well-known/acme-challenge/<the pending token>`` on the web port gets nothing - no
status, no byte - on every port. After the order, that request gets nothing either.
Shown besides: the served chain verifies against Pebble's root on all three ports; every
answered challenge is audited with the outside address; nothing from it reached the CEMM.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sqlite3
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509

from gateway.acme import manager as manager_module
from gateway.acme.board import ChallengeBoard
from tests.support import pebble
from tests.support.gateway import GatewayConfig, InProcessGateway, SimulatorThread, wait_for
from tests.support.netns import Host, Lab, require_netns

pytestmark = [
    pytest.mark.root,
    pytest.mark.timeout(120),
    pytest.mark.skipif(not pebble.available(), reason="needs Debian's pebble"),
]

INSIDE = "127.0.0.1"
DOMAIN = "cemm.example.com"
HOLD = 60.0  # the longest the first order waits for the probes

# Sends each case's bytes on a connection of its own and reports what came back.
PROBE = r"""
import json, socket, ssl, sys
address, cases = sys.argv[1], json.loads(sys.argv[2])

def client_hello():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="cemm.example.com")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()

results = []
for case in cases:
    data, error = b"", ""
    try:
        sock = socket.create_connection((address, case["port"]), timeout=8)
        payload = client_hello() if case["send"] == "tls" else case["send"].encode("latin-1")
        sock.sendall(payload)
        while len(data) < 65536:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            sock.settimeout(1)  # an answer is a failure already; no need to wait for all
    except OSError as exc:
        error = type(exc).__name__
    results.append({"name": case["name"], "got": data.decode("latin-1"), "error": error})
print(json.dumps(results))
"""


class HeldBoard(ChallengeBoard):
    """The challenge board of the gateway under test: the first order's first token stays
    pending (and Pebble unasked) until the test has probed the open window."""

    published = threading.Event()
    release = threading.Event()
    tokens: dict[str, str] = {}

    def add(self, token: str, key_authorization: str) -> None:
        super().add(token, key_authorization)
        HeldBoard.tokens[token] = key_authorization
        if not HeldBoard.release.is_set():
            HeldBoard.published.set()
            HeldBoard.release.wait(HOLD)


@dataclass
class Env:
    lab: Lab
    ca: Host
    config: GatewayConfig
    gateway: InProcessGateway
    server: pebble.Pebble
    simulator: SimulatorThread
    token: str
    key_authorization: str
    during: dict[str, dict[str, str]] = field(default_factory=dict)

    def probe(self, cases: list[dict[str, object]]) -> dict[str, dict[str, str]]:
        address = self.lab.gateway_address_v4
        out = self.ca.python(PROBE, address, json.dumps(cases), timeout=90).stdout
        return {result["name"]: result for result in json.loads(out)}


def _head(method: str, path: str, *extra: str) -> str:
    return (
        "".join(f"{line}\r\n" for line in (f"{method} {path} HTTP/1.1", f"Host: {DOMAIN}", *extra))
        + "\r\n"
    )


def _cases(config: GatewayConfig, token: str) -> list[dict[str, object]]:
    """Everything an outside address might try, but the one pending challenge request."""
    web, ws, admin = config.http_port, config.ws_port, config.admin_port
    challenge = f"/.well-known/acme-challenge/{token}"
    wrong = "A" * len(token)
    cases: dict[str, tuple[int, str]] = {
        "root": (web, _head("GET", "/")),
        "cemm api": (web, _head("GET", "/api/v1/public/cemm")),
        "login page": (web, _head("GET", "/.gateway/login")),
        "other token": (web, _head("GET", f"/.well-known/acme-challenge/{wrong}")),
        "no token": (web, _head("GET", "/.well-known/acme-challenge/")),
        "query": (web, _head("GET", f"{challenge}?x=1")),
        "head": (web, _head("HEAD", challenge)),
        "post": (web, _head("POST", challenge, "Content-Length: 2") + "{}"),
        "expect": (web, _head("GET", challenge, "Expect: 100-continue")),
        "pipelined": (web, _head("GET", challenge) + _head("GET", "/")),
        "tls on web": (web, "tls"),
        "challenge on ws": (ws, _head("GET", challenge)),
        "tls on ws": (ws, "tls"),
        "challenge on admin": (admin, _head("GET", challenge)),
        "tls on admin": (admin, "tls"),
    }
    return [{"name": name, "port": port, "send": send} for name, (port, send) in cases.items()]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    require_netns()
    directory: Path = tmp_path_factory.mktemp("acme-http01-netns")
    with pytest.MonkeyPatch.context() as patch, Lab() as lab:
        ca = lab.add_host("ca", public=True)
        patch.setattr(manager_module, "ChallengeBoard", HeldBoard)
        simulator = SimulatorThread()
        config = GatewayConfig(
            directory,
            upstream_http_port=simulator.http_port,
            upstream_ws_port=simulator.ws_port,
            listen_host="",
        )
        server = pebble.Pebble(
            directory / "pebble",
            http_port=config.http_port,
            address=ca.v4,
            resolve_to=lab.gateway_address_v4,
            host=ca,
        )
        config.extra = (
            "[tls]\nenabled = true\n"
            f'[allowlist]\ndefault_networks = ["{INSIDE}/32"]\n'
            f'admin_networks = ["{INSIDE}/32"]\n'
            f'[auth]\ntrusted_networks = ["{INSIDE}/32"]\n'
            "[acme]\nenabled = true\n"
            f'domains = ["{DOMAIN}"]\n'
            f'directory_url = "{server.directory_url}"\n'
            f'ca_bundle = "{server.ca_bundle}"\n'
        )
        gateway = InProcessGateway(config)
        try:
            assert HeldBoard.published.wait(30), "the first order put no token on the board"
            [(token, key_authorization)] = HeldBoard.tokens.items()
            found = Env(lab, ca, config, gateway, server, simulator, token, key_authorization)
            control = {"name": "the challenge", "port": config.http_port}
            control["send"] = _head("GET", f"/.well-known/acme-challenge/{token}")
            try:
                found.during = found.probe([*_cases(config, token), control])
            finally:
                HeldBoard.release.set()
            yield found
        finally:
            HeldBoard.release.set()
            gateway.close()
            server.close()
            simulator.close()


def test_pebble_is_outside_the_allowlist(env: Env) -> None:
    outside = ipaddress.ip_address(env.ca.v4)
    assert outside not in ipaddress.ip_network(f"{INSIDE}/32")
    assert outside not in env.lab.subnet_v4  # not even on the gateway's segment


def test_during_the_order_only_the_pending_challenge_is_answered(env: Env) -> None:
    during = dict(env.during)
    answer = during.pop("the challenge")
    head, _, body = answer["got"].partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200"), answer
    assert body == env.key_authorization
    assert len(during) == len(_cases(env.config, env.token))
    for name, result in during.items():
        assert result["got"] == "", f"{name}: {result}"
        assert result["error"] in ("", "ConnectionResetError"), f"{name}: {result}"


def served(port: int, root: bytes | None = None) -> x509.Certificate:
    """The certificate served on ``port`` to a loopback (allowlisted) client; verified
    against ``root`` for ``DOMAIN`` when given."""
    if root is not None:
        context = ssl.create_default_context(cadata=root.decode())
    else:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((INSIDE, port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname=DOMAIN) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _issued(env: Env) -> None:
    wait_for(
        lambda: "Pebble" in served(env.config.http_port).issuer.rfc4514_string(),
        "Pebble's certificate is served",
        timeout=60,
    )


def test_issuance_and_the_chain_verifies_against_pebbles_root(env: Env) -> None:
    _issued(env)
    root = env.server.root_pem()
    for port in (env.config.http_port, env.config.ws_port, env.config.admin_port):
        certificate = served(port, root)  # raises unless the chain verifies
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert names.value.get_values_for_type(x509.DNSName) == [DOMAIN]
    acme = env.gateway.gateway.acme
    assert acme is not None
    status = acme.status()
    assert status.issued and status.last_attempt is not None and status.last_attempt.ok
    assert not acme.board.any_pending()


def test_after_the_order_the_outside_address_gets_nothing(env: Env) -> None:
    _issued(env)
    challenge = {"name": "the challenge", "port": env.config.http_port}
    challenge["send"] = _head("GET", f"/.well-known/acme-challenge/{env.token}")
    results = env.probe([*_cases(env.config, env.token), challenge])
    assert len(results) == len(_cases(env.config, env.token)) + 1
    for name, result in results.items():
        assert result["got"] == "", f"{name}: {result}"
        assert result["error"] in ("", "ConnectionResetError"), f"{name}: {result}"


def test_answers_are_audited_with_the_outside_address(env: Env) -> None:
    _issued(env)
    database = env.config.data_dir / "gateway.db"

    def answers() -> list[dict[str, object]]:
        conn = sqlite3.connect(database, timeout=5)
        try:
            rows = conn.execute(
                "SELECT detail FROM audit_log WHERE event = 'acme.challenge_answered'"
            ).fetchall()
        finally:
            conn.close()
        return [json.loads(row[0]) for row in rows]

    # The probe's control and Pebble's validation.
    wait_for(lambda: len(answers()) >= 2, "the answered challenges are audited")
    assert {entry["client"] for entry in answers()} == {env.ca.v4}
    assert all(env.token not in json.dumps(entry) for entry in answers())


def test_nothing_from_the_outside_reached_the_cemm(env: Env) -> None:
    _issued(env)
    forwarded = {r.header("x-forwarded-for") for r in env.simulator.sim.requests}
    assert env.ca.v4 not in forwarded
