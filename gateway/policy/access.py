"""Who may use the CEMM through the gateway: the per-request access decision.

Plain data in (:class:`RequestFacts`, the current :class:`AuthSnapshot`, the access
configuration), a :class:`Verdict` out; no sockets, no database, no mitmproxy. The proxy's
authentication addon only translates. Rules, in order:

1. The admin listener, and the gateway's reserved prefix ``/.gateway/`` on the web and ws
   ports, go to the gateway's own web app (login portal, admin app), which does its own
   checks: ``portal``. Except ``/.gateway/ws/...``, the same-origin tunnel to the CEMM's
   WebSocket port, which is CEMM traffic and decided like the rest.
2. A WebSocket upgrade that carries an ``Origin`` is admitted only if that origin is the
   gateway as the browser reached it: on the web port, the scheme and host of the request
   (the ``Host`` header as received, or a trusted proxy's ``X-Forwarded-Host``); on the ws
   port, that host name with the web port, where the page that opens the socket is served;
   or one of ``[auth] public_hostnames``. Anything else is cross-site WebSocket hijacking:
   ``forbidden``.
3. A client in ``[auth] trusted_networks`` needs no login: ``admit``.
4. ``Authorization: Bearer cgw_...``: a valid, unexpired API token admits; a read-only token
   admits only GET and HEAD (``forbidden`` otherwise); anything else is ``unauthorized``.
5. A session cookie whose session is usable (not revoked, not past its lifetime, used
   within the idle timeout, user enabled) admits. A browser WebSocket upgrade with a session
   must carry an ``Origin`` (browsers always do), and a state-changing request (not GET,
   HEAD or OPTIONS) that carries an ``Origin`` must carry the gateway's own.
6. Otherwise a page navigation is sent to the login page (``login``) and anything else
   gets 401 (``unauthorized``).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from gateway.auth import tokens
from gateway.policy.allowlist import CompiledAllowlist
from gateway.policy.credentials import AuthSnapshot, session_usable

RESERVED_PREFIX = "/.gateway/"
# The same-origin tunnel to the CEMM's WebSocket port: CEMM traffic, checked like the ws port.
WS_TUNNEL_PREFIX = "/.gateway/ws"


def is_ws_tunnel(path: str) -> bool:
    return path == WS_TUNNEL_PREFIX or path.startswith(
        (WS_TUNNEL_PREFIX + "/", WS_TUNNEL_PREFIX + "?")
    )


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
Kind = Literal["admit", "portal", "login", "unauthorized", "forbidden"]


@dataclass(frozen=True, slots=True)
class RequestFacts:
    listener: Literal["web", "ws", "admin"]
    method: str
    path: str
    client_address: str
    scheme: str
    host: str
    origin: str | None
    websocket: bool
    navigation: bool
    session_token: str | None
    authorization: str | None


@dataclass(frozen=True, slots=True)
class AccessConfig:
    trusted_networks: CompiledAllowlist[Any]
    public_hostnames: frozenset[str]
    web_port: int


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Kind
    reason: str
    session_id: str | None = None
    token_id: str | None = None
    user_name: str | None = None


def _authority(host: str, scheme: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(f"{scheme}://{host}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), port or (443 if scheme in ("https", "wss") else 80)


def origin_allowed(
    origin: str,
    *,
    scheme: str,
    host: str,
    page_port: int | None,
    public_hostnames: frozenset[str],
) -> bool:
    """Whether ``origin`` is the gateway itself, as the browser reached it.

    ``page_port`` is the port the page was served from when the request arrived on another
    port (the ws port: the page comes from the web port); None when the request came to the
    page's own port, whose ``Host`` then names the origin exactly.
    """
    try:
        parts = urlsplit(origin)
        origin_port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return False
    seen = (parts.hostname.lower(), origin_port or (443 if parts.scheme == "https" else 80))
    for public in public_hostnames:
        if _authority(public, parts.scheme) == seen:
            return True
    request = _authority(host, scheme)
    if request is None or parts.scheme != scheme:
        return False
    return seen == (request if page_port is None else (request[0], page_port))


def _own_origin(facts: RequestFacts, config: AccessConfig) -> bool:
    assert facts.origin is not None
    return origin_allowed(
        facts.origin,
        scheme=facts.scheme,
        host=facts.host,
        page_port=config.web_port if facts.listener == "ws" else None,
        public_hostnames=config.public_hostnames,
    )


def decide_request(
    facts: RequestFacts,
    config: AccessConfig,
    auth: AuthSnapshot,
    last_seen: Mapping[str, float],
    *,
    now: float,
) -> Verdict:
    if facts.listener == "admin" or (
        facts.path.startswith(RESERVED_PREFIX) and not is_ws_tunnel(facts.path)
    ):
        return Verdict("portal", "gateway_app")
    if facts.websocket and facts.origin is not None and not _own_origin(facts, config):
        return Verdict("forbidden", "foreign_origin")
    if config.trusted_networks.decide(facts.client_address).allowed:
        return Verdict("admit", "trusted_network")
    if facts.authorization is not None:
        return _token_verdict(facts, auth, now)
    if facts.session_token:
        info = auth.sessions.get(tokens.token_hash(facts.session_token))
        if info is not None and session_usable(
            info, now=now, last_seen=last_seen.get(info.id, 0.0), idle_timeout=auth.idle_timeout
        ):
            if facts.websocket and facts.origin is None:
                return Verdict("forbidden", "missing_origin")
            if (
                facts.origin is not None
                and facts.method not in SAFE_METHODS
                and not _own_origin(facts, config)
            ):
                # A cross-site form or fetch that carried the cookie (SameSite=Lax keeps
                # most out; this is the second line).
                return Verdict("forbidden", "foreign_origin")
            return Verdict("admit", "session", session_id=info.id, user_name=info.user_name)
        reason = "invalid_session"
    else:
        reason = "no_credentials"
    if facts.navigation and not facts.websocket:
        return Verdict("login", reason)
    return Verdict("unauthorized", reason)


def _token_verdict(facts: RequestFacts, auth: AuthSnapshot, now: float) -> Verdict:
    scheme, _, value = (facts.authorization or "").partition(" ")
    parsed = tokens.parse_api_token(value.strip()) if scheme.lower() == "bearer" else None
    info = auth.api_tokens.get(parsed[0]) if parsed else None
    if (
        parsed is None
        or info is None
        or not hmac.compare_digest(info.secret_hash, tokens.token_hash(parsed[1]))
        or (info.expires_at is not None and info.expires_at <= now)
    ):
        return Verdict("unauthorized", "invalid_token")
    if info.read_only and facts.method not in ("GET", "HEAD"):
        return Verdict("forbidden", "read_only_token", token_id=info.id, user_name=info.user_name)
    return Verdict("admit", "token", token_id=info.id, user_name=info.user_name)


SESSION_COOKIE = "cemm_session"
SECURE_SESSION_COOKIE = "__Host-cemm_session"


def session_cookie_name(*, tls: bool) -> str:
    """``__Host-`` needs ``Secure``, which needs HTTPS: the plain name is for plain HTTP."""
    return SECURE_SESSION_COOKIE if tls else SESSION_COOKIE
