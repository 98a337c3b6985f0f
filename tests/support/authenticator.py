"""A software WebAuthn authenticator for tests: makes credentials (P-256, attestation
``none``) and signs assertions the way a phone or a security key does, so the gateway's
passkey checks run against real signatures. It also makes the answers a hostile client
would send: for another relying party or origin, with a chosen signature counter.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers.encode_cbor import encode_cbor

UP, UV, AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Credential:
    credential_id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


@dataclass
class SoftAuthenticator:
    """``count``: whether it counts signatures (a security key) or reports 0 (synced)."""

    count: bool = True
    credentials: list[Credential] = field(default_factory=list)

    def create(self, options: str | dict[str, Any], origin: str) -> dict[str, Any]:
        """The answer to ``navigator.credentials.create`` for these options."""
        found = json.loads(options) if isinstance(options, str) else options
        rp_id = found["rp"]["id"]
        key = ec.generate_private_key(ec.SECP256R1())
        credential = Credential(secrets.token_bytes(16), key, rp_id, unb64url(found["user"]["id"]))
        self.credentials.append(credential)
        numbers = key.public_key().public_numbers()
        cose = encode_cbor(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([UP | UV | AT])
            + struct.pack(">I", 0)
            + bytes(16)
            + struct.pack(">H", len(credential.credential_id))
            + credential.credential_id
            + cose
        )
        client_data = self._client_data("webauthn.create", found["challenge"], origin)
        attestation = encode_cbor({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64url(credential.credential_id),
            "rawId": b64url(credential.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        }

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
        ).encode()

    def get(
        self,
        options: str | dict[str, Any],
        origin: str,
        *,
        credential: Credential | None = None,
        rp_id: str | None = None,
        sign_count: int | None = None,
        verified: bool = True,
    ) -> dict[str, Any]:
        """The answer to ``navigator.credentials.get``: by the first credential of the
        options' relying party (or ``credential``), signed for ``rp_id`` (default: the
        options'), with the next counter (or ``sign_count``)."""
        found = json.loads(options) if isinstance(options, str) else options
        rp_id = rp_id or found["rpId"]
        if credential is None:
            credential = next(c for c in self.credentials if c.rp_id == found["rpId"])
        if sign_count is None:
            if self.count:
                credential.sign_count += 1
            sign_count = credential.sign_count
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([UP | (UV if verified else 0)])
            + struct.pack(">I", sign_count)
        )
        client_data = self._client_data("webauthn.get", found["challenge"], origin)
        signature = credential.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64url(credential.credential_id),
            "rawId": b64url(credential.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(credential.user_handle),
            },
            "clientExtensionResults": {},
        }
