"""Random tokens (sessions, API tokens, CSRF) and the check of the post-login ``next`` URL.

Session tokens
--------------
256 random bits, URL-safe base64 without padding (43 characters): what the session cookie
holds. The database keeps only ``token_hash(token)``, SHA-256 hex, so a leaked database
(or backup) does not hand out live sessions. A fast hash is the right choice here, unlike
for passwords: slow hashes make guessing low-entropy human secrets expensive, but a
256-bit random token cannot be guessed from its hash, and a fast hash keeps the session
check on every proxied request cheap. Sessions are listed and revoked by a separate
``new_public_id()`` (12 letters and digits, about 71 bits), so the id shown in the CLI or
UI is never the secret itself.

API tokens
----------
``cgw_<id>_<secret>``: ``id`` is 8 characters ``[a-z0-9]`` (shown in listings and used to
find the row), ``secret`` 43 characters ``[A-Za-z0-9]`` (256 bits). The fixed prefix lets
log filters and secret scanners recognise a leaked token; using only letters, digits and
underscores keeps it one word for double-click selection. Store the hash of the whole
token (``token_hash``); ``parse_api_token`` is a strict format check that never raises,
to run before any lookup.

CSRF
----
``new_csrf_token`` is a 256-bit random value; ``csrf_matches`` compares in constant time
and treats a missing or empty value as no match.

The ``next`` URL after login
----------------------------
``is_safe_next`` returns ``next_url`` only if a browser can resolve it to nothing but a
path on the same origin; anything else gives ``"/"``. This is the open-redirect defence,
so the rules are strict and refuse rather than repair:

1. ``next_url`` is a non-empty string of printable ASCII without spaces, at most 2048
   characters. Browsers drop tabs and newlines inside URLs (``"/\\t/evil.com"`` becomes
   ``"//evil.com"``), and a Location header must be ASCII anyway; paths with other
   characters arrive percent-encoded.
2. It, and its percent-decoded form (decoded until stable, at most 3 rounds, because
   some layer may decode it again), each start with exactly one ``/``: not ``//`` (a
   scheme-relative URL to another host) and not ``/\\`` (browsers read ``\\`` as ``/``).
   So ``https:evil.com``, ``//evil.com``, ``///evil.com``, ``/\\evil.com`` and
   ``/%2F%2Fevil.com`` are all refused.
3. ``next_url`` contains no backslash at all, and the path (before ``?`` or ``#``) of
   neither form contains a backslash, a control or format character, or whitespace
   (decoded, the query may: ``?q=a%20b`` is data and stays encoded in the redirect).
4. Neither path has an ``@``: harmless after a single ``/`` in a browser, but the classic
   user-info trick if anything upstream is sloppy, and no gateway path contains it.
5. It starts with one of ``prefix_allowed``, and so does its decoded path after resolving
   ``.`` and ``..`` segments, so ``/.gateway/../x`` does not escape ``/.gateway/``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import unicodedata
from urllib.parse import unquote

__all__ = [
    "API_TOKEN_PREFIX",
    "MAX_NEXT_LENGTH",
    "csrf_matches",
    "is_safe_next",
    "new_api_token",
    "new_csrf_token",
    "new_public_id",
    "new_session_token",
    "parse_api_token",
    "token_hash",
]

_TOKEN_BYTES = 32  # 256 bits
_PUBLIC_ID_ALPHABET = string.ascii_letters + string.digits  # no "-": ids are CLI arguments
_PUBLIC_ID_LENGTH = 12  # 12 * log2(62) = 71.4 bits

API_TOKEN_PREFIX = "cgw"  # noqa: S105 - a public marker, not a secret
_API_ID_ALPHABET = string.ascii_lowercase + string.digits
_API_ID_LENGTH = 8
_API_SECRET_ALPHABET = string.ascii_letters + string.digits
_API_SECRET_LENGTH = 43  # 43 * log2(62) = 256.03 bits
_API_TOKEN_RE = re.compile(
    rf"{API_TOKEN_PREFIX}_([a-z0-9]{{{_API_ID_LENGTH}}})_([A-Za-z0-9]{{{_API_SECRET_LENGTH}}})"
)

MAX_NEXT_LENGTH = 2048
_MAX_DECODE_ROUNDS = 3
_FALLBACK_NEXT = "/"


def _random_string(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


# --- sessions ------------------------------------------------------------------------------


def new_session_token() -> str:
    """A new session token: 256 random bits, URL-safe base64 without padding."""
    return secrets.token_urlsafe(_TOKEN_BYTES)


def token_hash(token: str) -> str:
    """SHA-256 hex of a token: what the database stores instead of the token.

    Never raises: header bytes that are not UTF-8 reach us as lone surrogates, and such a
    "token" must simply match nothing (401), not fail the request.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_public_id() -> str:
    """A short random id (12 letters and digits) to list and revoke a session by."""
    return _random_string(_PUBLIC_ID_ALPHABET, _PUBLIC_ID_LENGTH)


# --- API tokens ----------------------------------------------------------------------------


def new_api_token() -> tuple[str, str]:
    """A new API token and its id: ``("cgw_<id>_<secret>", "<id>")``."""
    token_id = _random_string(_API_ID_ALPHABET, _API_ID_LENGTH)
    secret = _random_string(_API_SECRET_ALPHABET, _API_SECRET_LENGTH)
    return f"{API_TOKEN_PREFIX}_{token_id}_{secret}", token_id


def parse_api_token(text: str) -> tuple[str, str] | None:
    """``(id, secret)`` if ``text`` is exactly an API token, else None (never raises).

    No surrounding whitespace is accepted: strip the ``Bearer`` scheme before calling.
    """
    if not isinstance(text, str):
        return None
    match = _API_TOKEN_RE.fullmatch(text)
    if match is None:
        return None
    return match.group(1), match.group(2)


# --- CSRF ----------------------------------------------------------------------------------


def new_csrf_token() -> str:
    """A new CSRF token: 256 random bits, URL-safe base64 without padding."""
    return secrets.token_urlsafe(_TOKEN_BYTES)


def csrf_matches(expected: str | None, received: str | None) -> bool:
    """Whether two CSRF tokens are equal, in constant time; missing or empty is no match."""
    if not isinstance(expected, str) or not isinstance(received, str):
        return False
    if not expected or not received:
        return False
    # Bytes, because compare_digest refuses str with non-ASCII characters (raises).
    return hmac.compare_digest(expected.encode("utf-8"), received.encode("utf-8"))


# --- next URL ------------------------------------------------------------------------------


def _is_printable_ascii(text: str) -> bool:
    return all("\x21" <= char <= "\x7e" for char in text)


def _has_forbidden_char(text: str) -> bool:
    for char in text:
        if char == "\\" or char.isspace():
            return True
        if unicodedata.category(char) in ("Cc", "Cf", "Zs", "Zl", "Zp"):
            return True
    return False


def _path_part(url: str) -> str:
    return re.split(r"[?#]", url, maxsplit=1)[0]


def _is_single_slash_path(url: str) -> bool:
    path = _path_part(url)
    return (
        url.startswith("/")
        and not url.startswith(("//", "/\\"))
        and not _has_forbidden_char(path)
        and "@" not in path
    )


def _decoded_forms(url: str) -> list[str] | None:
    """``url`` percent-decoded repeatedly until stable; None if it does not settle."""
    forms: list[str] = []
    current = url
    for _ in range(_MAX_DECODE_ROUNDS):
        decoded = unquote(current)
        if decoded == current:
            return forms
        forms.append(decoded)
        current = decoded
    return None


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4 for an absolute path: resolve ``.`` and ``..`` segments."""
    segments = path.split("/")[1:]
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    resolved = "/" + "/".join(kept)
    if segments and segments[-1] in (".", "..") and kept:
        resolved += "/"
    return resolved


def is_safe_next(next_url: str | None, *, prefix_allowed: tuple[str, ...] = ("/",)) -> str:
    """``next_url`` if it is a same-origin path under one of ``prefix_allowed``, else "/".

    The rules are in the module docstring. Never raises.
    """
    if not isinstance(next_url, str) or not next_url or len(next_url) > MAX_NEXT_LENGTH:
        return _FALLBACK_NEXT
    if not _is_printable_ascii(next_url) or "\\" in next_url:
        return _FALLBACK_NEXT
    if not _is_single_slash_path(next_url):
        return _FALLBACK_NEXT
    decoded_forms = _decoded_forms(next_url)
    if decoded_forms is None:
        return _FALLBACK_NEXT
    if not all(_is_single_slash_path(form) for form in decoded_forms):
        return _FALLBACK_NEXT
    final = decoded_forms[-1] if decoded_forms else next_url
    resolved_path = _remove_dot_segments(_path_part(final))
    for prefix in prefix_allowed:
        if next_url.startswith(prefix) and resolved_path.startswith(prefix):
            return next_url
    return _FALLBACK_NEXT
