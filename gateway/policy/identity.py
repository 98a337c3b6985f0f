"""Who is this? The one identity decision: credentials in, an identity (or why none) out.

Plain data in - the session cookie's value, the ``Authorization`` header, the proxy's
snapshot of usable sessions and API tokens (:class:`AuthSnapshot`) and when each session
was last seen - and an :class:`Identity` out, or the reason there is none. The proxy's
access decision (:mod:`gateway.policy.access`), the admin app (``gateway/admin/security.py``)
and the web app's session lookup (``gateway/web/context.py``) all ask here, so a token or a
session is valid in exactly the same cases everywhere. Rules:

1. ``Authorization`` present: it must be ``Bearer cgw_<id>_<secret>`` naming an API token of
   the snapshot whose secret matches (compared in constant time) and which has not expired:
   the token's identity. Anything else in ``Authorization`` is ``invalid_token``, even with
   a good session cookie beside it - a client that sends a credential means that one.
2. Otherwise a session cookie whose session is in the snapshot (not revoked, its user
   enabled), within its lifetime and used within the idle timeout: the session's identity.
   A cookie that is none of that: ``invalid_session``.
3. Neither: ``no_credentials``.

A read-only token may only read (:data:`READ_ONLY_METHODS`, :meth:`Identity.may_use`), on the
CEMM's ports and in the admin app alike; so may the ``viewer`` role
(:data:`VIEWER_METHODS`: GET, HEAD, OPTIONS). What else the identity may do (roles, the Origin
rule) is decided by the caller's rule (:func:`gateway.policy.access.decide_request` for
the CEMM's ports).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from gateway.auth import tokens
from gateway.policy.credentials import AuthSnapshot, SessionInfo, session_usable, token_usable

NoIdentity = Literal["invalid_token", "invalid_session", "no_credentials"]

#: All a read-only API token may do, on every door: read. Not even OPTIONS (a script that
#: only reads has no use for it, and what a method does is the server's to say).
READ_ONLY_METHODS = frozenset({"GET", "HEAD"})
#: All the ``viewer`` role may do: look. OPTIONS too, because a browser's preflight is one.
VIEWER_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class Identity:
    via: Literal["session", "token"]
    user_name: str
    role: str
    session_id: str | None = None
    token_id: str | None = None
    csrf_token: str | None = None
    read_only: bool = False
    scopes: tuple[str, ...] = ()
    """The API token's path prefixes (:func:`gateway.policy.credentials.scope_admits`)."""
    session: SessionInfo | None = None
    """The session itself, for the login portal's account pages."""

    def may_use(self, method: str) -> bool:
        """Whether this identity's credential allows ``method`` at all (read-only tokens
        read); roles and the Origin rule are the caller's to add."""
        return (not self.read_only or method in READ_ONLY_METHODS) and (
            self.role != VIEWER or method in VIEWER_METHODS
        )


def identify(
    *,
    session_token: str | None,
    authorization: str | None,
    auth: AuthSnapshot,
    last_seen: Mapping[str, float],
    now: float,
) -> Identity | NoIdentity:
    """The identity these credentials prove, or why they prove none (rules: module doc)."""
    if authorization is not None:
        scheme, _, value = authorization.partition(" ")
        parsed = tokens.parse_api_token(value.strip()) if scheme.lower() == "bearer" else None
        token = auth.api_tokens.get(parsed[0]) if parsed else None
        if (
            parsed is None
            or token is None
            or not hmac.compare_digest(token.secret_hash, tokens.token_hash(parsed[1]))
            or not token_usable(token, now=now)
        ):
            return "invalid_token"
        return Identity(
            "token",
            token.user_name,
            token.role,
            token_id=token.id,
            read_only=token.read_only,
            scopes=token.scopes,
        )
    if not session_token:
        return "no_credentials"
    session = auth.sessions.get(tokens.token_hash(session_token))
    if session is None or not session_usable(
        session, now=now, last_seen=last_seen.get(session.id, 0.0), idle_timeout=auth.idle_timeout
    ):
        return "invalid_session"
    return Identity(
        "session",
        session.user_name,
        session.role,
        session_id=session.id,
        csrf_token=session.csrf_token,
        session=session,
    )
