"""The gateway's certificate: the owner's, or a self-signed one made at first start; and the
TLS server context built from it, rebuilt when the files change.

TLS policy (Mozilla's "intermediate" profile, which every browser and phone of the last
years speaks): TLS 1.2 and 1.3 only; for TLS 1.2 only ECDHE key exchange with AES-GCM or
ChaCha20-Poly1305 (no CBC, no RSA key exchange, no anonymous or export suites); TLS
compression off; no session tickets (no long-lived ticket key to protect); ALPN offers
HTTP/1.1 only (the gateway speaks HTTP/1.1 to clients).

Renewals: :class:`CertificateSource` looks at the files' size, modification time and inode
at most once a second, from the TLS handshake itself; when they change it loads them into
a new context. Files that fail to load (a renewal caught half-written) leave the previous
context in force and are retried on the next check.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

logger = logging.getLogger("cemm_gateway.tls")

TLS12_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
SELF_SIGNED_DAYS = 825
CHECK_INTERVAL = 1.0


class CertificateError(Exception):
    """The certificate or key cannot be used; the message says which file and why."""


def self_signed_paths(data_dir: Path) -> tuple[Path, Path]:
    directory = data_dir / "tls"
    return directory / "self-signed.crt", directory / "self-signed.key"


def default_hostnames() -> list[str]:
    names = [socket.gethostname(), "localhost"]
    return list(dict.fromkeys(name for name in names if name))


def make_self_signed(
    cert_path: Path, key_path: Path, *, hostnames: list[str], addresses: list[str]
) -> None:
    """A P-256 key and a certificate for the given names and addresses (key file 0600)."""
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in hostnames]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0] if hostnames else "cemm-gateway")]
    )
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(cert_path.parent, 0o700)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Written under a temporary name and renamed: never a half-written key in place.
    temporary = key_path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key_bytes)
    os.replace(temporary, key_path)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def ensure_certificate(
    *, cert: str, key: str, data_dir: Path, hostnames: list[str], addresses: list[str]
) -> tuple[Path, Path]:
    """The owner's files, or the self-signed pair in the data directory (made if missing)."""
    if cert and key:
        return Path(cert), Path(key)
    cert_path, key_path = self_signed_paths(data_dir)
    if not (cert_path.exists() and key_path.exists()):
        names = hostnames or default_hostnames()
        make_self_signed(cert_path, key_path, hostnames=names, addresses=addresses)
        logger.info(
            "made a self-signed certificate for %s in %s",
            ", ".join(names + addresses),
            cert_path.parent,
        )
    return cert_path, key_path


def _select_alpn(connection: SSL.Connection, offered: list[bytes]) -> Any:
    if b"http/1.1" in offered:
        return b"http/1.1"
    return SSL.NO_OVERLAPPING_PROTOCOLS


def build_context(cert_path: Path, key_path: Path) -> SSL.Context:
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_max_proto_version(SSL.TLS1_3_VERSION)
    context.set_cipher_list(TLS12_CIPHERS.encode())
    context.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_NO_TICKET | SSL.OP_NO_RENEGOTIATION)
    context.set_alpn_select_callback(_select_alpn)
    try:
        context.use_certificate_chain_file(str(cert_path))
    except SSL.Error as error:
        raise CertificateError(f"cannot use certificate {cert_path}: {error}") from None
    try:
        context.use_privatekey_file(str(key_path))
        context.check_privatekey()
    except SSL.Error as error:
        raise CertificateError(
            f"cannot use key {key_path} with certificate {cert_path}: {error}"
        ) from None
    return context


def fingerprint(cert_path: Path) -> str:
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return certificate.fingerprint(hashes.SHA256()).hex(":")


@dataclass
class _Loaded:
    stamp: tuple[tuple[int, int, int], ...]
    context: SSL.Context


class CertificateSource:
    """The current TLS context, reloaded when the certificate or key file changes."""

    def __init__(self, cert_path: Path, key_path: Path) -> None:
        self.cert_path = cert_path
        self.key_path = key_path
        self._loaded = _Loaded(self._stamp(), build_context(cert_path, key_path))
        self._checked = time.monotonic()

    def _stamp(self) -> tuple[tuple[int, int, int], ...]:
        stamps = []
        for path in (self.cert_path, self.key_path):
            try:
                info = path.stat()
            except OSError:
                stamps.append((0, 0, 0))
            else:
                stamps.append((info.st_ino, info.st_size, info.st_mtime_ns))
        return tuple(stamps)

    def context(self) -> SSL.Context:
        now = time.monotonic()
        if now - self._checked >= CHECK_INTERVAL:
            self._checked = now
            stamp = self._stamp()
            if stamp != self._loaded.stamp:
                try:
                    self._loaded = _Loaded(stamp, build_context(self.cert_path, self.key_path))
                except (CertificateError, OSError) as error:
                    logger.error("keeping the previous certificate: %s", error)
                else:
                    logger.info(
                        "loaded the renewed certificate %s (sha256 %s)",
                        self.cert_path,
                        hashlib.sha256(self.cert_path.read_bytes()).hexdigest()[:16],
                    )
        return self._loaded.context
