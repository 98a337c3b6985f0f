"""The gateway's session cookie in a request's ``Cookie`` headers: reading it and removing it.

Both use the same reading of the header, so whatever the proxy would accept as the session
is exactly what it removes before the request goes to the CEMM:

- every ``Cookie`` field is split at ``;``; each piece is ``name=value``, with spaces and
  tabs around both trimmed (RFC 6265's ``cookie-string``, read leniently);
- a name matches only exactly (cookie names are case-sensitive); the first match is the
  session, as browsers send the most specific cookie first;
- no unquoting: the gateway's tokens never contain quotes, so a quoted value is simply
  not a valid session.

mitmproxy's own cookie parser (``request.cookies``) is not used here: it reads a header
character by character in Python and re-serialises every remaining pair on removal, which
cost more per request than all of the gateway's checks together (``bench/results.md``).
"""

from __future__ import annotations

from collections.abc import Iterable

_OWS = b" \t"


def session_cookie(fields: Iterable[tuple[bytes, bytes]], name: str) -> str | None:
    """The value of the first cookie called ``name`` in these header fields, or None."""
    wanted = name.encode()
    for field_name, value in fields:
        if field_name.lower() != b"cookie" or wanted not in value:
            continue
        for piece in value.split(b";"):
            key, equals, found = piece.partition(b"=")
            if equals and key.strip(_OWS) == wanted:
                return found.strip(_OWS).decode("utf-8", "surrogateescape")
    return None


def without_cookie(value: bytes, name: str) -> bytes:
    """One ``Cookie`` header value without any cookie called ``name``.

    The other pieces are kept byte for byte, in order; an empty result means the header
    should be dropped.
    """
    wanted = name.encode()
    if wanted not in value:
        return value
    pieces = value.split(b";")
    kept = [piece for piece in pieces if piece.partition(b"=")[0].strip(_OWS) != wanted]
    if len(kept) == len(pieces):
        return value
    return b";".join(kept).strip(_OWS)
