"""ACME DNS-01 through ``[acme.dns] provider`` (dns-lexicon) against a real DNS server with
an API: PowerDNS (Debian's ``pdns-server`` with ``pdns-backend-sqlite3``) on loopback,
which is also the resolver Pebble asks (``pebble -dnsserver``). The gateway publishes the
TXT records through PowerDNS's HTTP API with lexicon's ``powerdns`` provider, the API key
read from a file (``auth_token_file``).

Shown: issuance of a certificate with a wildcard name, the served chain verifying against
Pebble's root; the records gone from the zone after the order; nothing opened on the web
port meanwhile; a refused API key is an error in plain words that does not quote the key.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography import x509

from gateway.acme.dns_provider import provider_hook
from gateway.acme.errors import AcmeError
from gateway.settings.acme import AcmeDnsSettings
from tests.support import pdns, pebble
from tests.support.gateway import GatewayConfig, InProcessGateway, SimulatorThread, wait_for

INSIDE, OUTSIDE = "127.0.0.5", "127.0.0.1"
ZONE = "example.com"
DOMAINS = ["cemm.example.com", "*.cemm.example.com"]
RECORD = "_acme-challenge.cemm.example.com"

pytestmark = pytest.mark.skipif(
    not (pebble.available() and pdns.available()),
    reason="needs Debian's pebble, pdns-server and pdns-backend-sqlite3",
)


@dataclass
class Env:
    gateway: InProcessGateway
    pebble: pebble.Pebble
    pdns: pdns.PowerDns


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    directory = tmp_path_factory.mktemp("acme-lexicon")
    server = pdns.PowerDns(directory / "pdns")
    simulator = SimulatorThread()
    acme_server = None
    gateway = None
    try:
        server.create_zone(ZONE)
        config = GatewayConfig(
            directory,
            upstream_http_port=simulator.http_port,
            upstream_ws_port=simulator.ws_port,
        )
        acme_server = pebble.Pebble(
            directory / "pebble",
            http_port=config.http_port,
            dns_server=f"127.0.0.1:{server.dns_port}",
        )
        token = directory / "pdns-api-key"
        token.write_text(server.API_KEY + "\n")
        token.chmod(0o600)
        config.extra = (
            "[tls]\nenabled = true\n"
            f'[allowlist]\ndefault_networks = ["{INSIDE}/32"]\nadmin_networks = ["{INSIDE}/32"]\n'
            "[acme]\nenabled = true\n"
            f"domains = {DOMAINS!r}\n".replace("'", '"')
            + 'challenge = "dns-01"\n'
            f'directory_url = "{acme_server.directory_url}"\n'
            f'ca_bundle = "{acme_server.ca_bundle}"\n'
            "[acme.dns]\n"
            'provider = "powerdns"\n'
            "propagation_seconds = 0\n"
            f'pdns_server = "{server.api_url}"\n'
            f'auth_token_file = "{token}"\n'
            "ttl = 60\n"
        )
        gateway = InProcessGateway(config)
        yield Env(gateway, acme_server, server)
    finally:
        if gateway is not None:
            gateway.close()
        if acme_server is not None:
            acme_server.close()
        simulator.close()
        server.close()


def served(port: int, root: bytes | None = None) -> x509.Certificate:
    """The certificate served on ``port``; verified against ``root`` when given."""
    if root is not None:
        context = ssl.create_default_context(cadata=root.decode())
    else:
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


def test_dns01_through_powerdns(env: Env) -> None:
    port = env.gateway.config.http_port
    wait_for(
        lambda: "Pebble" in served(port).issuer.rfc4514_string(),
        "Pebble's certificate is served",
        timeout=45,
    )
    certificate = served(port, env.pebble.root_pem())  # the chain verifies
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert sorted(names.value.get_values_for_type(x509.DNSName)) == sorted(DOMAINS)
    acme = env.gateway.gateway.acme
    assert acme is not None
    status = acme.status()
    assert status.last_attempt is not None and status.last_attempt.ok
    # The records of both challenges (the name and its wildcard) are gone from the zone.
    wait_for(lambda: env.pdns.txt(RECORD) == [], "the TXT records are removed", timeout=10)
    # DNS-01 opens no window: the web port stays shut to addresses outside the allowlist.
    with socket.socket() as sock:
        sock.bind((OUTSIDE, 0))
        sock.settimeout(5)
        sock.connect(("127.0.0.1", port))
        try:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(100) == b""
        except (ConnectionResetError, BrokenPipeError):
            pass


def test_records_go_up_and_come_down(env: Env) -> None:
    hook = provider_hook(
        AcmeDnsSettings(
            provider="powerdns", pdns_server=env.pdns.api_url, auth_token=env.pdns.API_KEY
        )
    )
    name = "_acme-challenge.other.example.com"
    hook("add", name, "first-value")
    hook("add", name, "second-value")
    assert sorted(env.pdns.txt(name)) == ["first-value", "second-value"]
    hook("remove", name, "first-value")
    assert env.pdns.txt(name) == ["second-value"]
    hook("remove", name, "second-value")
    assert env.pdns.txt(name) == []


def test_a_refused_api_key_is_a_plain_error_without_the_key(env: Env) -> None:
    wrong = "not-the-api-key-of-this-server"
    hook = provider_hook(
        AcmeDnsSettings(provider="powerdns", pdns_server=env.pdns.api_url, auth_token=wrong)
    )
    with pytest.raises(AcmeError) as raised:
        hook("add", RECORD, "some-value")
    message = str(raised.value)
    assert (
        f"the DNS provider powerdns failed to add the TXT record {RECORD} in the zone {ZONE}"
        in message
    )
    assert "401" in message
    assert wrong not in message
