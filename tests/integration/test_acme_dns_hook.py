"""ACME DNS-01 through ``[acme] dns_hook`` against Pebble, with ``pebble-challtestsrv`` as
Pebble's resolver: the hook publishes the TXT record through challtestsrv's management
API. Shown: issuance of a certificate with a wildcard name (DNS-01 only), the hook called
with add and remove for each record, and nothing opened on the web port meanwhile.
"""

from __future__ import annotations

import socket
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.support import pebble
from tests.support.gateway import GatewayConfig, InProcessGateway, SimulatorThread, wait_for

INSIDE, OUTSIDE = "127.0.0.5", "127.0.0.1"
DOMAINS = ["cemm.example.com", "*.cemm.example.com"]

pytestmark = pytest.mark.skipif(not pebble.available(), reason="needs Debian's pebble")

HOOK = """#!{python}
import json, sys, urllib.request
action, name, value = sys.argv[1:4]
with open({calls!r}, "a") as log:
    log.write(f"{{action}} {{name}}\\n")
path = "/set-txt" if action == "add" else "/clear-txt"
body = {{"host": name.rstrip(".") + "."}}
if action == "add":
    body["value"] = value
request = urllib.request.Request(
    "http://127.0.0.1:{port}" + path, data=json.dumps(body).encode(), method="POST"
)
urllib.request.urlopen(request, timeout=5).read()
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcessGateway, Path]]:
    directory = tmp_path_factory.mktemp("acme-dns")
    simulator = SimulatorThread()
    config = GatewayConfig(
        directory,
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
    )
    server = pebble.Pebble(directory / "pebble", http_port=config.http_port)
    calls = directory / "hook-calls.txt"
    hook = directory / "hook.py"
    hook.write_text(
        HOOK.format(python=sys.executable, calls=str(calls), port=server.challtestsrv_port)
    )
    hook.chmod(0o755)
    config.extra = (
        "[tls]\nenabled = true\n"
        f'[allowlist]\ndefault_networks = ["{INSIDE}/32"]\nadmin_networks = ["{INSIDE}/32"]\n'
        "[acme]\nenabled = true\n"
        f"domains = {DOMAINS!r}\n".replace("'", '"')
        + 'challenge = "dns-01"\n'
        f'dns_hook = "{hook}"\n'
        f'directory_url = "{server.directory_url}"\n'
        f'ca_bundle = "{server.ca_bundle}"\n'
    )
    gateway = InProcessGateway(config)
    try:
        yield gateway, calls
    finally:
        gateway.close()
        server.close()
        simulator.close()


def served(port: int) -> x509.Certificate:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.socket() as sock:
        sock.bind((INSIDE, 0))
        sock.settimeout(5)
        sock.connect(("127.0.0.1", port))
        with context.wrap_socket(sock, server_hostname=DOMAINS[0]) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_dns01_through_the_hook(env: tuple[InProcessGateway, Path]) -> None:
    gateway, calls = env
    wait_for(
        lambda: "Pebble" in served(gateway.config.http_port).issuer.rfc4514_string(),
        "Pebble's certificate is served",
        timeout=60,
    )
    names = served(gateway.config.http_port).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert sorted(names.value.get_values_for_type(x509.DNSName)) == sorted(DOMAINS)
    lines = calls.read_text().splitlines()
    assert lines.count("add _acme-challenge.cemm.example.com") == 2
    assert lines.count("remove _acme-challenge.cemm.example.com") == 2
    # DNS-01 opens no window: the web port stays shut to addresses outside the allowlist.
    with socket.socket() as sock:
        sock.bind((OUTSIDE, 0))
        sock.settimeout(5)
        sock.connect(("127.0.0.1", gateway.config.http_port))
        try:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(100) == b""
        except (ConnectionResetError, BrokenPipeError):
            pass
