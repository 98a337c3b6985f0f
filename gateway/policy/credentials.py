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


def normalise_scope(scope: str) -> str | None:
    """A scope as stored and compared: a normalised path without its trailing slash. A scope
    must already be written plainly (no ``.``, ``..``, ``//`` or percent-encoding): one that
    normalising would change is refused, so what was given is what is enforced."""
    if not scope.startswith("/") or "?" in scope or "#" in scope:
        return None
    normal = normalise_path(scope)
    return normal if normal == (scope.rstrip("/") or "/") else None


def scope_admits(scopes: Iterable[str], path: str) -> bool:
    """Whether one of ``scopes`` (normalised) admits the raw request ``path``."""
    normal = normalise_path(path)
    if normal is None:
        return False
    for scope in scopes:
        if scope == "/" or normal == scope or normal.startswith(scope + "/"):
            return True
    return False
