"""What an ACME order's parts share: the error a person reads, and the DNS hook's shape."""

from __future__ import annotations

from collections.abc import Callable


class AcmeError(Exception):
    """The order failed; the message says why in plain words."""


# Publishes (``"add"``) or removes (``"remove"``) the TXT record ``name`` with ``value``.
Hook = Callable[[str, str, str], None]
