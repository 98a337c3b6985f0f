"""Passkeys in Chromium over HTTPS with a certificate the browser trusts: a test CA's root
in an NSS database that Chromium reads (``$HOME/.pki/nssdb``, made with ``certutil`` from
libnss3-tools), the gateway's certificate for ``cemm.test`` signed by it, and the name
mapped to loopback in the browser. The same story as on ``http://localhost``
(:func:`tests.e2e.test_passkeys.story`); the relying party is ``cemm.test``."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.e2e.test_passkeys import story
from tests.support.admin import LOOPBACK_ENTRY, add_user, auth_config
from tests.support.browser import CHROMIUM, FLAGS, require_chromium
from tests.support.ci import cannot_run
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread, cli

NAME = "cemm.test"


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, Any] | None
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = (
        (x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[0])]), issuer[1])
        if issuer
        else (name, key)
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
    )
    if issuer is None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=0), critical=True
        ).add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def _test_ca(directory: Path) -> tuple[Path, Path, Path]:
    """(root certificate, the gateway's certificate, its key)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    root = _certificate("cemm-gateway test CA", ca_key, None)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate(NAME, key, ("cemm-gateway test CA", ca_key))
    return (
        _pem(directory / "root.pem", root.public_bytes(serialization.Encoding.PEM)),
        _pem(directory / "gateway.pem", leaf.public_bytes(serialization.Encoding.PEM)),
        _pem(
            directory / "gateway.key",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        ),
    )


def _nss_home(directory: Path, root: Path) -> Path:
    """A home directory whose NSS database trusts the test CA (Chromium reads it)."""
    if shutil.which("certutil") is None:
        cannot_run("certutil is missing (apt-get install libnss3-tools)")
    database = directory / ".pki" / "nssdb"
    database.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{database}", "-N", "--empty-password"], check=True)
    subprocess.run(
        ["certutil", "-d", f"sql:{database}", "-A", "-t", "C,,", "-n", "cemm test CA",
         "-i", str(root)],
        check=True,
    )  # fmt: skip
    return directory


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayConfig, Path]]:
    directory = tmp_path_factory.mktemp("passkeys-https")
    root, cert, key = _test_ca(directory)
    config = GatewayConfig(directory / "gw", upstream_http_port=0, upstream_ws_port=0)
    simulator = SimulatorThread(page_ws_port=config.ws_port)
    config.upstream_http_port, config.upstream_ws_port = simulator.http_port, simulator.ws_port
    config.extra = (
        f'[tls]\nenabled = true\ncert = "{cert}"\nkey = "{key}"\nhostnames = ["{NAME}"]\n'
        + auth_config().replace("[auth]\n", f'[auth]\npublic_hostnames = ["{NAME}"]\n', 1)
    )
    config.write()
    gateway: GatewayProcess | None = None
    try:
        allowed = cli("allow", "add", LOOPBACK_ENTRY, "--label", "loopback", config=config.path)
        assert allowed.returncode == 0, allowed.stderr
        gateway = GatewayProcess(config, https=True)
        add_user(config, "nina")
        yield config, _nss_home(directory / "home", root)
    finally:
        if gateway is not None:
            gateway.close()
        simulator.close()


@pytest.fixture(scope="module")
def browsers(
    env: tuple[GatewayConfig, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, Any]]:
    """Chromium with the test CA trusted, and one without; ``cemm.test`` on loopback."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    _, home = env
    args = [*FLAGS, f"--host-resolver-rules=MAP {NAME} 127.0.0.1"]
    plain_home = tmp_path_factory.mktemp("plain-home")
    with sync_playwright() as playwright:
        trusting = playwright.chromium.launch(
            executable_path=CHROMIUM, args=args, env={**os.environ, "HOME": str(home)}
        )
        doubting = playwright.chromium.launch(
            executable_path=CHROMIUM, args=args, env={**os.environ, "HOME": str(plain_home)}
        )
        try:
            yield trusting, doubting
        finally:
            trusting.close()
            doubting.close()


def test_the_passkey_story_over_https_with_a_trusted_certificate(
    env: tuple[GatewayConfig, Path], browsers: tuple[Any, Any]
) -> None:
    config, _ = env
    trusting, doubting = browsers
    base = f"https://{NAME}:{config.http_port}"
    # Without the test CA in its NSS database the browser refuses the certificate: the
    # trust below comes from that database.
    page = doubting.new_page()
    with pytest.raises(Exception, match="ERR_CERT_AUTHORITY_INVALID"):
        page.goto(f"{base}/.gateway/login")
    story(trusting, base, rp_id=NAME)
