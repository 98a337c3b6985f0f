"""WireGuard keys, made by the gateway, and the vault that keeps a phone's private key for
a short while.

WireGuard keys are Curve25519 keys, base64-encoded raw bytes: ``cryptography``'s X25519
makes them without running ``wg genkey``. A generated phone key is needed only until the
phone has its configuration; until then it is kept sealed (Fernet, key in
``<data_dir>/wireguard/vault.key``, 0600) so a copy of the database alone does not carry
usable keys, and it is deleted at the first handshake or after 24 hours.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.i18n import N_, Message


class WireguardKeyError(ValueError):
    """Not a WireGuard key; the message says what a key looks like (``text``: the same,
    to show in the reader's language)."""

    def __init__(self, template: str, /, **params: object) -> None:
        self.text = Message(template, **params)
        super().__init__(str(self.text))


def generate_private_key() -> str:
    key = X25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode()


def public_key(private_key: str) -> str:
    key = X25519PrivateKey.from_private_bytes(base64.b64decode(private_key))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def generate_preshared_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def check_key(text: str) -> str:
    """A public key a user brings: 32 bytes in base64 (44 characters ending in '=')."""
    text = text.strip()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32 or len(text) != 44:
        raise WireguardKeyError(
            N_(
                "'{key}' is not a WireGuard public key; it is 44 characters of base64, like "
                "the output of 'wg pubkey', e.g. xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
            ),
            key=text[:60],
        )
    return text


def write_secret(path: Path, data: bytes) -> None:
    """Create a file only the gateway can read, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.replace(temporary, path)


def server_private_key(directory: Path) -> str:
    """The gateway's own key, made at first start (0600, never shown)."""
    path = directory / "server.key"
    if not path.exists():
        write_secret(path, generate_private_key().encode() + b"\n")
    return path.read_text().strip()


class KeyVault:
    def __init__(self, directory: Path) -> None:
        path = directory / "vault.key"
        if not path.exists():
            write_secret(path, Fernet.generate_key())
        self._fernet = Fernet(path.read_bytes().strip())

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str | None:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None
