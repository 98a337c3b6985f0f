"""Pebble, the ACME test server (Debian's ``pebble``), and its DNS stand-in
``pebble-challtestsrv``, for one test module: on loopback, or inside a network namespace
of the netns harness (``host=``, a :class:`tests.support.netns.Host`).

Pebble ships no certificate for its own API, so :class:`Pebble` makes a small CA and a
certificate for ``address`` (the gateway trusts it through ``[acme] ca_bundle``). Pebble,
its management API and ``pebble-challtestsrv`` listen on ``address`` (``127.0.0.1``, or
the host's own address). ``pebble-challtestsrv`` answers every A query with
``resolve_to``, so any domain the gateway orders resolves to the gateway; Pebble validates
HTTP-01 on ``http_port`` (the gateway's web port) and connects from ``address``.
``PEBBLE_VA_NOSLEEP``, ``PEBBLE_WFE_NONCEREJECT=0`` and ``PEBBLE_AUTHZREUSE=0`` keep it
fast and deterministic.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.netutil import free_port

if TYPE_CHECKING:
    from tests.support.netns import Host


def available() -> bool:
    return shutil.which("pebble") is not None and shutil.which("pebble-challtestsrv") is not None


def _api_certificate(directory: Path, address: str) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for ``address``: (ca, cert, key) files."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble API test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(address)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "api-ca.pem", directory / "api-cert.pem", directory / "api-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def _wait_port(address: str, port: int, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start on port {port}") from None
            time.sleep(0.1)


class Pebble:
    def __init__(
        self,
        directory: Path,
        *,
        http_port: int,
        dns_server: str | None = None,
        address: str = "127.0.0.1",
        resolve_to: str = "127.0.0.1",
        host: Host | None = None,
    ) -> None:
        """``host``: run both inside that netns host (it must own ``address``; the lab
        stops them when it closes, :meth:`stop` does so earlier)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.address = address
        self._host = host
        self.ca_bundle, cert, key = _api_certificate(directory, address)
        self.port = free_port()
        self.management_port = free_port()
        self.dns_port = free_port()
        self.challtestsrv_port = free_port()
        config = {
            "pebble": {
                "listenAddress": f"{address}:{self.port}",
                "managementListenAddress": f"{address}:{self.management_port}",
                "certificate": str(cert),
                "privateKey": str(key),
                "httpPort": http_port,
                "tlsPort": free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        config_path = directory / "pebble.json"
        config_path.write_text(json.dumps(config))
        self._logs = [(directory / "challtestsrv.log").open("w")]
        self.challtestsrv: subprocess.Popen[bytes] | None = None
        if dns_server is None:
            dns_server = f"{address}:{self.dns_port}"
            self.challtestsrv = self._start(
                [
                    "pebble-challtestsrv",
                    "-defaultIPv4",
                    resolve_to,
                    "-defaultIPv6",
                    "",
                    "-dns01",
                    f"{address}:{self.dns_port}",
                    "-management",
                    f"{address}:{self.challtestsrv_port}",
                    "-http01",
                    "",
                    "-https01",
                    "",
                    "-tlsalpn01",
                    "",
                ],
                stdout=self._logs[0],
                stderr=subprocess.STDOUT,
            )
        self._logs.append((directory / "pebble.log").open("w"))
        environment = {
            **os.environ,
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_WFE_NONCEREJECT": "0",
            "PEBBLE_AUTHZREUSE": "0",
        }
        self.process = self._start(
            [
                "pebble",
                "-config",
                str(config_path),
                "-dnsserver",
                dns_server,
            ],
            stdout=self._logs[1],
            stderr=subprocess.STDOUT,
            env=environment,
        )
        try:
            if self.challtestsrv is not None:
                _wait_port(address, self.challtestsrv_port, "pebble-challtestsrv")
            _wait_port(address, self.port, "pebble")
            _wait_port(address, self.management_port, "pebble's management API")
        except BaseException:
            self.close()
            raise

    def _start(self, argv: list[str], **options: Any) -> subprocess.Popen[bytes]:
        if self._host is not None:
            return self._host.popen(argv, **options)
        return subprocess.Popen(argv, **options)

    @property
    def directory_url(self) -> str:
        return f"https://{self.address}:{self.port}/dir"

    def root_pem(self) -> bytes:
        """The root Pebble issues under (changes with every Pebble start)."""
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        url = f"https://{self.address}:{self.management_port}/roots/0"
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            return bytes(response.read())

    def log(self) -> str:
        for file in self._logs:
            file.flush()
        return (self.directory / "pebble.log").read_text(errors="replace")

    def stop(self) -> None:
        for process in (self.process, self.challtestsrv):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)

    def close(self) -> None:
        self.stop()
        for file in self._logs:
            file.close()
