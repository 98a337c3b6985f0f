"""What the proxy knows about logins: usable sessions and API tokens, as plain data.

Built from the database by :mod:`gateway.services.sessions`, read by the access decision
(:mod:`gateway.policy.access`) on every request.

Token scopes. An API token may be limited to path prefixes (its ``scopes``; none means the
whole CEMM). The request path is normalised once, here (:func:`normalise_path`), and a
scope admits it on segment boundaries only (:func:`scope_admits`):

- the query is cut off; the path is percent-decoded once; a path that still holds a ``%``
  after that (double encoding), or holds ``;`` (path parameters some servers strip),
  ``\\``, or a control character, is refused: no scope admits it;
- empty segments (``//``) and ``.`` segments are dropped, ``..`` removes the segment before
  it; a ``..`` above the root is refused;
- a scope ``/api/v1/public/`` (or ``/api/v1/public``) admits ``/api/v1/public`` and
  everything below it, never ``/api/v1/publicx``; the scope ``/`` admits every path.

The path compared must be the path forwarded: a request whose raw path (before ``?``) is
not already in normal form (:func:`in_normal_form`: an empty segment, a ``.`` or ``..``
segment raw or percent-encoded, an encoded ``/`` or ``\\``, a ``#``, a backslash, bytes
that are not UTF-8, or anything :func:`normalise_path` would change) is admitted by no
scope, because another server may read it differently from the decoded copy.

Scopes name a port. A scope ``PATH`` admits only plain HTTP requests on the web port, never
a WebSocket upgrade; a scope ``ws:PATH`` (:data:`WS_SCOPE`) admits only WebSocket upgrades,
on the WebSocket port and through the web port's tunnel to it (compared without the
tunnel's prefix). Which kind a request needs is the access rule's to say
(:mod:`gateway.policy.access`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote


@dataclass(frozen=True)
class SessionInfo:
    id: str
    user_id: int
    user_name: str
    role: str
    csrf_token: str
    created_at: float
    last_seen_at: float
    expires_at: float
    client_address: str | None
    user_agent: str | None


@dataclass(frozen=True)
class ApiTokenInfo:
    id: str
    user_id: int
    user_name: str
    role: str
    name: str
    secret_hash: str
    read_only: bool
    created_at: float
    expires_at: float | None
    last_used_at: float | None
    scopes: tuple[str, ...] = ()
    """Normalised path prefixes the token is limited to; empty: no limit."""


@dataclass(frozen=True)
class AuthSnapshot:
    """What the proxy checks requests against. Immutable; replaced as a whole."""

    sessions: Mapping[str, SessionInfo] = field(default_factory=dict)  # by token hash
    api_tokens: Mapping[str, ApiTokenInfo] = field(default_factory=dict)  # by token id
    idle_timeout: float = 86400.0
    generation: int = 0

    def session_ids(self) -> frozenset[str]:
        return frozenset(info.id for info in self.sessions.values())


def session_usable(info: SessionInfo, *, now: float, last_seen: float, idle_timeout: float) -> bool:
    return info.expires_at > now and now - max(info.last_seen_at, last_seen) < idle_timeout


def token_usable(info: ApiTokenInfo, *, now: float) -> bool:
    """An API token of the snapshot (not revoked, its user enabled) works until its
    ``expires_at``, the first moment it no longer does."""
    return info.expires_at is None or info.expires_at > now


#: The prefix of a scope that names a path on the CEMM's WebSocket port.
WS_SCOPE = "ws:"

_REFUSED_CHARACTERS = frozenset(";\\%") | frozenset(chr(c) for c in range(32)) | {"\x7f"}


def normalise_path(raw: str) -> str | None:
    """The path a scope is compared with, or None when the path is refused (module doc)."""
    path = raw.split("?", 1)[0].split("#", 1)[0]
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        return None
    if not decoded.startswith("/") or any(c in _REFUSED_CHARACTERS for c in decoded):
        return None
    segments: list[str] = []
    for segment in decoded.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not segments:
                return None
            segments.pop()
            continue
        segments.append(segment)
    return "/" + "/".join(segments)


_ENCODED_SEPARATORS = ("%2f", "%5c")


def in_normal_form(raw: str) -> bool:
    """Whether the raw request path (before ``?``) is already what :func:`normalise_path`
    makes of it (module doc): only such a path is compared with a scope."""
    path = raw.split("?", 1)[0]
    try:
        path.encode("utf-8")  # mitmproxy keeps bytes that are not UTF-8 as lone surrogates
    except UnicodeEncodeError:
        return False
    lowered = path.lower()
    if (
        "#" in path
        or "\\" in path
        or "//" in path
        or any(e in lowered for e in _ENCODED_SEPARATORS)
    ):
        return False
    if any(unquote(segment) in (".", "..") for segment in path.split("/")):
        return False
    normal = normalise_path(path)
    # Percent-encoding is decoded by normalise_path, so an encoded path is not in normal form.
    return normal is not None and normal == (path.rstrip("/") or "/")


def normalise_scope(scope: str) -> str | None:
    """A scope as stored and compared: a normalised path without its trailing slash, after
    :data:`WS_SCOPE` for a WebSocket scope. A scope must already be written plainly (no
    ``.``, ``..``, ``//`` or percent-encoding): one that normalising would change is
    refused, so what was given is what is enforced."""
    prefix = WS_SCOPE if scope.startswith(WS_SCOPE) else ""
    path = scope[len(prefix) :]
    if not path.startswith("/") or "?" in path or "#" in path:
        return None
    normal = normalise_path(path)
    return prefix + normal if normal == (path.rstrip("/") or "/") else None


def scope_admits(scopes: Iterable[str], path: str, *, websocket: bool = False) -> bool:
    """Whether one of ``scopes`` (normalised) admits the raw request ``path``: the plain
    scopes for a plain HTTP request on the web port, the ``ws:`` scopes for a WebSocket
    upgrade (the caller says which, and refuses what is neither)."""
    normal = normalise_path(path) if in_normal_form(path) else None
    if normal is None:
        return False
    prefix = WS_SCOPE if websocket else ""
    for scope in scopes:
        if websocket != scope.startswith(WS_SCOPE):
            continue
        bare = scope[len(prefix) :]
        if bare == "/" or normal == bare or normal.startswith(bare + "/"):
            return True
    return False
