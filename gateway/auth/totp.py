"""The TOTP second factor (RFC 6238) and its one-time recovery codes.

TOTP
----
Secrets are 160 random bits (the size RFC 4226 recommends for HMAC-SHA1), base32 encoded,
for the settings every authenticator app understands: SHA-1, 6 digits, 30-second steps.

``verify_totp`` accepts a code for the current step or up to ``window`` steps before or
after it (clock drift between phone and gateway, and the time the user needs to type),
and returns the step the code matched. The caller stores that step as the account's
``last_used_step`` and passes it back next time: a code is only accepted for a step
*greater* than the last used one, so an observed code cannot be replayed, not even
within its 90-second window, and neither can an older one. Every candidate step is
compared, with ``hmac.compare_digest``, so the time taken does not depend on which step
(if any) matched.

Recovery codes
--------------
Ten codes of 12 characters in Crockford's base32 alphabet (``0-9a-z`` without ``i l o u``),
shown as ``xxxx-xxxx-xxxx``: 60 random bits each. Typing is forgiving: case, spaces and
dashes are ignored, and ``o`` / ``i`` / ``l`` are read as ``0`` / ``1`` / ``1`` (the
letters a person might type for the digits). They are stored as SHA-256 of the normalised
code. A fast hash is the right tool here, unlike for passwords: a slow hash exists to
make guessing low-entropy human choices expensive, while a 60-bit random code cannot be
found from its SHA-256 by guessing (2^60 hashes per code), and the online path is
limited by the brute-force policy. ``match_recovery_code`` compares against every stored
hash in constant time per hash and returns the index, so the caller can mark that code
used (a used code may be left in the list as ``None``: it never matches again).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence

import pyotp

__all__ = [
    "RECOVERY_CODE_ALPHABET",
    "TOTP_DIGITS",
    "TOTP_STEP_SECONDS",
    "generate_recovery_codes",
    "hash_recovery_code",
    "match_recovery_code",
    "new_secret",
    "normalise_recovery_code",
    "provisioning_uri",
    "verify_totp",
]

TOTP_DIGITS = 6
TOTP_STEP_SECONDS = 30
_SECRET_BYTES = 20  # 160 bits

RECOVERY_CODE_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32
_RECOVERY_GROUPS = 3
_RECOVERY_GROUP_LENGTH = 4
_RECOVERY_CODE_LENGTH = _RECOVERY_GROUPS * _RECOVERY_GROUP_LENGTH  # 12 * 5 = 60 bits
# What a person may type instead of the digit: Crockford's decoding rules.
_RECOVERY_ALIASES = str.maketrans({"o": "0", "i": "1", "l": "1"})
_DIGITS = frozenset("0123456789")


def new_secret() -> str:
    """A new TOTP secret: 160 random bits, base32 without padding (32 characters)."""
    return base64.b32encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii").rstrip("=")


def _totp(secret: str) -> pyotp.TOTP:
    try:
        if not secret:
            raise ValueError("empty secret")
        # Decode once here so a broken secret fails with a clear message, not deep in pyotp.
        base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(
            "TOTP secret is not valid base32; reset the user's second factor"
            " (cemm-gateway user reset-2fa NAME) and enrol again"
        ) from exc
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_SECONDS)


def provisioning_uri(secret: str, *, account: str, issuer: str = "cemm-gateway") -> str:
    """The ``otpauth://totp/...`` URI an authenticator app imports (usually via a QR code)."""
    return _totp(secret).provisioning_uri(name=account, issuer_name=issuer)


def _normalise_code(code: str) -> str | None:
    digits = "".join(code.split())
    if len(digits) != TOTP_DIGITS or not set(digits) <= _DIGITS:
        return None
    return digits


def verify_totp(
    secret: str,
    code: str,
    *,
    last_used_step: int | None,
    now: float,
    window: int = 1,
) -> int | None:
    """The time step ``code`` is valid for, or None.

    Accepted: 6 digits (spaces anywhere are ignored) that are the code of a step within
    ``window`` steps of the one containing ``now``, and greater than ``last_used_step``.
    The caller stores the returned step as the new ``last_used_step``.
    """
    if window < 0:
        raise ValueError(f"TOTP window must be 0 or more steps, got {window}")
    totp = _totp(secret)
    if not isinstance(code, str):
        return None
    digits = _normalise_code(code)
    if digits is None:
        return None
    current = int(now // TOTP_STEP_SECONDS)
    matched: int | None = None
    for step in range(current - window, current + window + 1):
        if step < 0 or (last_used_step is not None and step <= last_used_step):
            continue
        expected = totp.generate_otp(step)
        # No early exit: every allowed step is compared; the latest match wins, which only
        # makes replay protection stricter in the (1 in 10^6) case of two steps matching.
        if hmac.compare_digest(expected.encode("ascii"), digits.encode("ascii")):
            matched = step
    return matched


def generate_recovery_codes(n: int = 10) -> list[str]:
    """``n`` new recovery codes, formatted ``xxxx-xxxx-xxxx`` (60 random bits each)."""
    if n < 1:
        raise ValueError(f"the number of recovery codes must be at least 1, got {n}")
    codes = []
    for _ in range(n):
        raw = "".join(secrets.choice(RECOVERY_CODE_ALPHABET) for _ in range(_RECOVERY_CODE_LENGTH))
        groups = [
            raw[i : i + _RECOVERY_GROUP_LENGTH]
            for i in range(0, _RECOVERY_CODE_LENGTH, _RECOVERY_GROUP_LENGTH)
        ]
        codes.append("-".join(groups))
    return codes


def normalise_recovery_code(text: str) -> str:
    """The canonical form of a typed recovery code: lower case, no spaces or dashes,
    ``o``/``i``/``l`` read as ``0``/``1``/``1``. Not validated: see ``match_recovery_code``."""
    compact = "".join(text.split()).replace("-", "").lower()
    return compact.translate(_RECOVERY_ALIASES)


def hash_recovery_code(code: str) -> str:
    """SHA-256 (hex) of the normalised code: what is stored instead of the code."""
    return hashlib.sha256(normalise_recovery_code(code).encode("utf-8")).hexdigest()


def match_recovery_code(text: str, hashes: Sequence[str | None]) -> int | None:
    """The index in ``hashes`` of the code ``text`` is, or None.

    ``None`` entries (used codes) never match. Text that cannot be a recovery code (wrong
    length or characters) is refused before hashing.
    """
    if not isinstance(text, str):
        return None
    normalised = normalise_recovery_code(text)
    if len(normalised) != _RECOVERY_CODE_LENGTH or not set(normalised) <= set(
        RECOVERY_CODE_ALPHABET
    ):
        return None
    candidate = hash_recovery_code(normalised).encode("ascii")
    found: int | None = None
    for index, stored in enumerate(hashes):
        if stored is None:
            continue
        # compare_digest on bytes: it refuses non-ASCII str, and a corrupt entry must not raise
        if hmac.compare_digest(candidate, stored.encode("utf-8")) and found is None:
            found = index
    return found
