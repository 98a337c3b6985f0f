"""Passkeys (WebAuthn): which relying party a request may use, and whether an assertion's
signature counter is believable. Pure decisions over plain data; the WebAuthn ceremony
itself (CBOR, COSE keys, signatures) is the ``webauthn`` library's, in
:mod:`gateway.services.passkeys`.

**The relying party** (:func:`relying_party`). A passkey is bound to a relying-party ID, a
host name the browser compares with the page's own: the gateway may only ask for one that
is its own name, never a name taken from an arbitrary ``Host`` header (a page on a name an
attacker points at the gateway would otherwise collect passkeys for that name). Given the
host the browser used (``Host``, or a trusted proxy's ``X-Forwarded-Host``), the scheme it
used and the gateway's names (:class:`gateway.policy.names.OwnNames`):

- a host that is not one of the gateway's own names: no passkeys (``not_own_name``);
- an IP address: no passkeys - browsers accept only a host name as relying-party ID
  (``ip_address``);
- plain HTTP to anything but ``localhost`` (or a name under ``.localhost``): no passkeys -
  browsers offer WebAuthn only in a secure context (``not_https``);
- else the relying-party ID is the host's name (lower-case, without port or trailing dot)
  and the origin the browser will report is ``scheme://host[:port]`` as the browser typed
  it (the default port left out).

A self-signed certificate passes here; the browser refuses WebAuthn on a page with a
certificate error itself, and the page says so next to the TOTP alternative.

**The signature counter** (:func:`counter_believable`). An authenticator that counts
signatures reports a number larger than the last one it reported; one that does not count
(most synced passkeys) always reports 0. A report that is not larger than the stored one,
while either is not 0, means two authenticators hold the same key: a cloned key. The login
is refused and audited; the stored counter is left as it was.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from gateway.policy.names import OwnNames

__all__ = ["NoPasskeys", "RelyingParty", "counter_believable", "relying_party"]

Unavailable = Literal["not_own_name", "ip_address", "not_https", "no_host"]
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """Where a passkey ceremony happens: the relying-party ID and the page's origin."""

    id: str
    origin: str


@dataclass(frozen=True, slots=True)
class NoPasskeys:
    """Why this page cannot offer passkeys (the page offers TOTP and says why)."""

    reason: Unavailable


def _is_localhost(name: str) -> bool:
    return name == "localhost" or name.endswith(".localhost")


def relying_party(host: str | None, scheme: str, names: OwnNames) -> RelyingParty | NoPasskeys:
    """The relying party for a page reached as ``scheme://host`` (see the module's docstring)."""
    scheme = scheme.lower()
    if not host or scheme not in DEFAULT_PORTS:
        return NoPasskeys("no_host")
    try:
        parts = urlsplit(f"{scheme}://{host}")
        port = parts.port
    except ValueError:
        return NoPasskeys("no_host")
    name = (parts.hostname or "").rstrip(".")
    if not name or parts.username is not None or parts.path:
        return NoPasskeys("no_host")
    if not names.is_own_host(host):
        return NoPasskeys("not_own_name")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return NoPasskeys("ip_address")
    if scheme != "https" and not _is_localhost(name):
        return NoPasskeys("not_https")
    shown_port = "" if port is None or port == DEFAULT_PORTS[scheme] else f":{port}"
    return RelyingParty(id=name, origin=f"{scheme}://{name}{shown_port}")


def counter_believable(stored: int, reported: int) -> bool:
    """Whether an authenticator's reported signature counter follows the stored one."""
    if stored == 0 and reported == 0:
        return True
    return reported > stored
