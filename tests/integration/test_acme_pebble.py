"""ACME end to end against Pebble (Debian's ``pebble``) on loopback: the certificate's
life after issuance.

Pebble's validator connects from 127.0.0.1, which the gateway's allowlist does NOT hold
(it admits 127.0.0.5 only), so issuance goes through the HTTP-01 window here too; the
window itself, with the authority on an outside address of its own, is shown in
tests/netns/test_acme_http01_netns.py. Shown here: the status and the stored files after
issuance; a forced renewal swaps the certificate while a WebSocket stays open;
``cemm-gateway cert status`` and ``cert renew``; a failing order leaves the certificate in
place serving, records the error, audits it and notifies the receivers (Apprise's
``json://`` to a server on loopback).
"""

from __future__ import annotations

import json
import socket
import sqlite3
import ssl
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from websockets.sync.client import connect

from gateway.acme.client import AcmeError
from tests.integration.test_notify import Receiver
from tests.support import pebble
from tests.support.gateway import (
    GatewayConfig,
    InProcessGateway,
    SimulatorThread,
    cli,
    wait_for,
)

INSIDE = "127.0.0.5"
DOMAIN = "cemm.example.com"

pytestmark = pytest.mark.skipif(not pebble.available(), reason="needs Debian's pebble")


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> Iterator[tuple[InProcessGateway, pebble.Pebble]]:
    directory = tmp_path_factory.mktemp("acme-pebble")
    simulator = SimulatorThread()
    config = GatewayConfig(
        directory,
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
    )
    server = pebble.Pebble(directory / "pebble", http_port=config.http_port)
    config.extra = (
        "[tls]\nenabled = true\n"
        f'[allowlist]\ndefault_networks = ["{INSIDE}/32"]\nadmin_networks = ["{INSIDE}/32"]\n'
        f'[auth]\ntrusted_networks = ["{INSIDE}/32"]\n'
        "[acme]\nenabled = true\n"
        'email = "owner@example.com"\n'
        f'domains = ["{DOMAIN}"]\n'
        f'directory_url = "{server.directory_url}"\n'
        f'ca_bundle = "{server.ca_bundle}"\n'
        f"[notify]\nurls = [{json.dumps(receiver.url)}]\n"
    )
    gateway = InProcessGateway(config)
    try:
        yield gateway, server
    finally:
        gateway.close()
        server.close()
        simulator.close()


def served(port: int, root: bytes | None = None) -> x509.Certificate:
    """The certificate the gateway serves on ``port`` to an allowlisted client; verified
    against ``root`` (for ``DOMAIN``) when given."""
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
        with context.wrap_socket(sock, server_hostname=DOMAIN) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def issued_by_pebble(gateway: InProcessGateway) -> bool:
    certificate = served(gateway.config.http_port)
    return "Pebble" in certificate.issuer.rfc4514_string()


def test_issued_certificate_status_and_files(
    env: tuple[InProcessGateway, pebble.Pebble],
) -> None:
    gateway, server = env
    wait_for(lambda: issued_by_pebble(gateway), "Pebble's certificate is served", timeout=60)
    certificate = served(gateway.config.http_port, server.root_pem())  # the chain verifies
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert names.value.get_values_for_type(x509.DNSName) == [DOMAIN]
    acme = gateway.gateway.acme
    assert acme is not None
    status = acme.status()
    assert status.issued and status.names == (DOMAIN,)
    assert status.last_attempt is not None and status.last_attempt.ok
    assert status.renew_at is not None and status.not_after is not None
    # Stored with the data, keys 0600.
    storage = acme.storage
    for path in (storage.account_key, storage.key):
        assert path.stat().st_mode & 0o777 == 0o600
    assert storage.directory.stat().st_mode & 0o777 == 0o700


def _fingerprint(certificate: x509.Certificate) -> bytes:
    return certificate.fingerprint(hashes.SHA256())


def test_forced_renewal_keeps_a_websocket_open(
    env: tuple[InProcessGateway, pebble.Pebble],
) -> None:
    gateway, server = env
    wait_for(lambda: issued_by_pebble(gateway), "Pebble's certificate is served", timeout=60)
    acme = gateway.gateway.acme
    assert acme is not None
    root = server.root_pem()
    before = _fingerprint(served(gateway.config.ws_port, root))
    context = ssl.create_default_context(cadata=root.decode())
    sock = socket.socket()
    sock.bind((INSIDE, 0))
    sock.settimeout(10)
    sock.connect(("127.0.0.1", gateway.config.ws_port))
    with connect(
        f"wss://{DOMAIN}:{gateway.config.ws_port}/ws",
        sock=sock,
        ssl=context,
        server_hostname=DOMAIN,
        open_timeout=10,
    ) as websocket:
        websocket.recv(timeout=10)
        gateway._loop.run(acme.renew(), timeout=120)
        wait_for(
            lambda: _fingerprint(served(gateway.config.ws_port, root)) != before,
            "the renewed certificate is served",
        )
        # The socket opened before the renewal still carries the CEMM's readings.
        websocket.recv(timeout=10)
        websocket.recv(timeout=10)


def test_cert_status_and_renew_on_the_command_line(
    env: tuple[InProcessGateway, pebble.Pebble],
) -> None:
    gateway, _ = env
    wait_for(lambda: issued_by_pebble(gateway), "Pebble's certificate is served", timeout=60)
    before = _fingerprint(served(gateway.config.http_port))
    result = cli("cert", "status", "--json", config=gateway.config.path)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["issued"] and status["names"] == [DOMAIN]
    assert status["last_attempt"]["ok"]
    result = cli("cert", "renew", "--wait", "120", config=gateway.config.path, timeout=150)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "succeeded" in result.stdout
    wait_for(
        lambda: _fingerprint(served(gateway.config.http_port)) != before,
        "the renewed certificate is served",
    )


def test_failing_order_keeps_the_certificate_and_is_notified(
    env: tuple[InProcessGateway, pebble.Pebble], receiver: Receiver
) -> None:
    gateway, server = env
    wait_for(lambda: issued_by_pebble(gateway), "Pebble's certificate is served", timeout=60)
    acme = gateway.gateway.acme
    assert acme is not None
    before = _fingerprint(served(gateway.config.http_port))
    server.stop()
    with pytest.raises(AcmeError):
        gateway._loop.run(acme.renew(), timeout=120)
    status = acme.status()
    assert status.last_attempt is not None and not status.last_attempt.ok
    assert "cannot reach the ACME directory" in status.last_attempt.error
    assert status.issued
    assert _fingerprint(served(gateway.config.http_port)) == before
    result = cli("cert", "status", config=gateway.config.path)
    assert "failed: cannot reach the ACME directory" in result.stdout
    # Audited, and so notified.
    database = gateway.config.data_dir / "gateway.db"

    def failures() -> list[tuple[str, dict[str, str]]]:
        conn = sqlite3.connect(database, timeout=5)
        try:
            rows = conn.execute(
                "SELECT actor, detail FROM audit_log"
                " WHERE event = 'certificate.renewal_failed' ORDER BY id"
            ).fetchall()
        finally:
            conn.close()
        return [(row[0], json.loads(row[1])) for row in rows]

    wait_for(lambda: bool(failures()), "the failed order is audited")
    actor, detail = failures()[-1]
    assert actor == "system" and detail["domains"] == DOMAIN
    assert detail["error"].startswith("cannot reach the ACME directory")

    def told() -> list[str]:
        return [
            message["message"]
            for message in receiver.messages
            if message["title"].startswith("Certificate order failed")
        ]

    wait_for(lambda: bool(told()), f"the failure is notified (got {receiver.titles()})")
    first_line = told()[0].splitlines()[0]
    assert first_line.startswith(
        f"The certificate for {DOMAIN} could not be ordered; the current one keeps serving:"
        " cannot reach the ACME directory"
    )
