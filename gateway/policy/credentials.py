"""What the proxy knows about logins: usable sessions and API tokens, as plain data.

Built from the database by :mod:`gateway.services.sessions`, read by the access decision
(:mod:`gateway.policy.access`) on every request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


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
