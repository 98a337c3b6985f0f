"""What an ACME order's parts share: the error a person reads, its redaction, and the DNS
hook's shape."""

from __future__ import annotations

import re
from collections.abc import Callable

from gateway.logs import REDACTED


class AcmeError(Exception):
    """The order failed; the message says why in plain words."""


# Publishes (``"add"``) or removes (``"remove"``) the TXT record ``name`` with ``value``.
Hook = Callable[[str, str, str], None]

# An authority's message may quote a challenge URL or the key authorization it expected
# (``<token>.<account key thumbprint>``, both base64url); eight characters identify them.
_CHALLENGE_TOKEN = re.compile(r"(/\.well-known/acme-challenge/[A-Za-z0-9_-]{8})[A-Za-z0-9_-]+")
_KEY_AUTHORIZATION = re.compile(r"\b([A-Za-z0-9_-]{8})[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")


def redacted(message: str) -> str:
    """``message`` with challenge tokens and key authorizations cut to eight characters."""
    message = _CHALLENGE_TOKEN.sub(rf"\1{REDACTED}", message)
    return _KEY_AUTHORIZATION.sub(rf"\1{REDACTED}", message)
