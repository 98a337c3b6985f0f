"""Where ACME keeps its files: ``<data dir>/acme/`` (0700), every key 0600, all of it in
backups with the rest of the data directory.

- ``account.key``: the account's private key (P-256, PEM), made once.
- ``fullchain.pem`` / ``privkey.pem``: the certificate served on every listener, and its
  key. Until the first order succeeds they hold a self-signed certificate, so the gateway
  starts and serves HTTPS at once; the TLS layer reloads them when they change
  (:class:`gateway.tls.certificates.CertificateSource`).
- ``status.json``: the last attempt, when and with what result, for the dashboard and
  ``cemm-gateway cert status``.
- ``renew-requested``: left by ``cemm-gateway cert renew``; the running gateway orders at
  once when it sees it, and removes it.

Every file is written under a temporary name and renamed into place: a reader sees the
old file or the new one, never half of one. The key is replaced before the certificate,
and the TLS layer refuses a pair that does not match, so a reload in between keeps the
previous pair serving until the certificate follows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


@dataclass(frozen=True)
class Attempt:
    """The last order: when (Unix time), whether it worked, and the error in plain words."""

    at: float
    ok: bool
    error: str = ""


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically with ``mode`` (the file never exists wider)."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def new_key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class AcmeStorage:
    def __init__(self, data_dir: Path) -> None:
        self.directory = data_dir / "acme"
        self.account_key = self.directory / "account.key"
        self.cert = self.directory / "fullchain.pem"
        self.key = self.directory / "privkey.pem"
        self.status = self.directory / "status.json"
        self.renew_request = self.directory / "renew-requested"

    def prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)

    def account_key_pem(self) -> bytes:
        """The account key, made on first use."""
        self.prepare()
        if not self.account_key.exists():
            write_private(self.account_key, new_key_pem())
        return self.account_key.read_bytes()

    def install(self, key_pem: bytes, fullchain_pem: bytes) -> None:
        """Put a new certificate in place (key first; see the module's docstring)."""
        self.prepare()
        write_private(self.key, key_pem)
        write_private(self.cert, fullchain_pem, 0o644)

    def request_renewal(self) -> None:
        self.prepare()
        self.renew_request.touch()

    def take_renewal_request(self) -> bool:
        """Was a renewal asked for (the request is consumed)?"""
        try:
            self.renew_request.unlink()
        except FileNotFoundError:
            return False
        return True

    def certificate(self) -> x509.Certificate | None:
        try:
            return x509.load_pem_x509_certificate(self.cert.read_bytes())
        except (OSError, ValueError):
            return None

    def issued(self) -> bool:
        """Does the certificate in place come from the authority (not the stand-in)?"""
        certificate = self.certificate()
        return certificate is not None and certificate.issuer != certificate.subject

    def record(self, attempt: Attempt) -> None:
        self.prepare()
        write_private(self.status, json.dumps(asdict(attempt)).encode(), 0o644)

    def last_attempt(self) -> Attempt | None:
        try:
            data = json.loads(self.status.read_text())
            return Attempt(at=float(data["at"]), ok=bool(data["ok"]), error=str(data["error"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def renewal_due(certificate: x509.Certificate) -> dt.datetime:
    """When a certificate is renewed: at two thirds of its lifetime."""
    start = certificate.not_valid_before_utc
    end = certificate.not_valid_after_utc
    return start + (end - start) * 2 / 3
