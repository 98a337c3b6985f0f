"""Who may use the CEMM through the gateway: the per-request access decision.

Plain data in (:class:`RequestFacts`, the current :class:`AuthSnapshot`, the access
configuration), a :class:`Verdict` out; no sockets, no database, no mitmproxy. The proxy's
authentication addon only translates. Rules, in order:

1. The admin listener, and the gateway's reserved prefix ``/.gateway/`` on the web and ws
   ports, go to the gateway's own web app (login portal, admin app), which does its own
   checks: ``portal``. Except ``/.gateway/ws/...``, the same-origin tunnel to the CEMM's
   WebSocket port, which is CEMM traffic and decided like the rest.
2. **The Origin rule**, whatever the credential (session, API token, trusted network,
   trusted VPN peer): a WebSocket upgrade, and every state-changing request (any method
   but GET, HEAD, OPTIONS), that carries an ``Origin`` must carry one of the gateway's own
   (:meth:`gateway.policy.names.OwnNames.is_own_origin`, with the web port as the page's
   port: the CEMM's page opens the WebSocket). Without an ``Origin`` (or with
   ``Origin: null``), a browser's ``Sec-Fetch-Site: cross-site`` or ``same-site`` refuses
   it the same way. Anything else is cross-site request forgery or WebSocket hijacking:
   ``forbidden`` (``foreign_origin``), with a detail that names the settings that add a
   name. A client's ``Host`` never makes a name the gateway's own. Clients that send
   neither header (scripts, Home Assistant) are not browsers and pass this rule.
3. A client in ``[auth] trusted_networks`` (or a trusted VPN peer) needs no login - when
   it addresses the gateway by one of its own names (``Host``): a page on another name
   pointed at the gateway's address (DNS rebinding) gets no trust, only rule 4 and 5.
4. Credentials, as :func:`gateway.policy.identity.identify` reads them, then what the
   identity may do, first refusal wins (``forbidden``, reason in brackets):

   - the ``viewer`` role (a session or an API token of a viewer) only looks: any method
     but GET, HEAD and OPTIONS, or one of those carrying a body (``Content-Length`` above
     0 or any ``Transfer-Encoding``: ``viewer_read_only``), and any request carrying a
     method-override header (:data:`METHOD_OVERRIDE_HEADERS`, a ``_`` in the name read as
     ``-``: :func:`is_method_override`; ``method_override``), is refused. For every other
     role those headers are removed before forwarding
     (:data:`gateway.policy.forwarded.CLIENT_SUPPLIED_HEADERS`);
   - a read-only API token only GET and HEAD, without a body (``read_only_token``);
   - a scoped API token only paths its scopes admit (``out_of_scope``,
     :func:`gateway.policy.credentials.scope_admits`), whose raw form is already normal.
     A plain scope admits only plain HTTP requests on the web port (outside the tunnel); a
     ``ws:`` scope only WebSocket upgrades on the WebSocket port and in the web port's
     tunnel to it (``/.gateway/ws/...``, compared without that prefix). Anything else (a
     plain request on the WebSocket port or in the tunnel, an upgrade elsewhere on the web
     port) no scope admits;
   - a session's WebSocket upgrade without an ``Origin`` (browsers always send one:
     ``missing_origin``).

   Otherwise a valid API token or a usable session admits.
5. Otherwise a page navigation is sent to the login page (``login``) and anything else
   gets 401 (``unauthorized``): ``invalid_token``, ``invalid_session``, ``no_credentials``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gateway.policy.allowlist import CompiledAllowlist
from gateway.policy.credentials import AuthSnapshot, scope_admits
from gateway.policy.identity import VIEWER, VIEWER_METHODS, Identity, identify
from gateway.policy.names import OwnNames

RESERVED_PREFIX = "/.gateway/"
# The same-origin tunnel to the CEMM's WebSocket port: CEMM traffic, checked like the ws port.
WS_TUNNEL_PREFIX = "/.gateway/ws"


def is_ws_tunnel(path: str) -> bool:
    return path == WS_TUNNEL_PREFIX or path.startswith(
        (WS_TUNNEL_PREFIX + "/", WS_TUNNEL_PREFIX + "?")
    )


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The headers by which a client asks a server to treat a request as another method. A
#: viewer's request carrying one is refused; everyone else's loses them before forwarding.
METHOD_OVERRIDE_HEADERS = frozenset(
    {"x-http-method-override", "x-http-method", "x-method-override"}
)
Kind = Literal["admit", "portal", "login", "unauthorized", "forbidden"]


def is_method_override(name: str) -> bool:
    """Whether a header name is a method override. Some servers (CGI, WSGI) read ``_`` in
    a header name as ``-``, so ``X_HTTP_Method_Override`` is one too."""
    return name.lower().replace("_", "-") in METHOD_OVERRIDE_HEADERS


def carries_body(content_length: str | None, transfer_encoding: str | None) -> bool:
    """Whether a request's headers announce a body: any ``Transfer-Encoding``, or a
    ``Content-Length`` that is not 0 (one that is no number counts as a body)."""
    if transfer_encoding is not None:
        return True
    if content_length is None:
        return False
    return content_length.strip() not in ("0", "")


@dataclass(frozen=True, slots=True)
class RequestFacts:
    listener: Literal["web", "ws", "admin"]
    method: str
    path: str
    client_address: str
    host: str
    origin: str | None
    fetch_site: str | None
    websocket: bool
    navigation: bool
    session_token: str | None
    authorization: str | None
    method_override: bool = False
    """Whether the request carries one of :data:`METHOD_OVERRIDE_HEADERS`."""
    body: bool = False
    """Whether the request announces a body (:func:`carries_body`)."""


@dataclass(frozen=True, slots=True)
class AccessConfig:
    trusted_networks: CompiledAllowlist[Any]
    names: OwnNames
    web_port: int
    viewer_websocket_messages: Literal["allow", "drop"] = "allow"
    """Whether a viewer's WebSocket messages reach the CEMM (``[roles]``)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Kind
    reason: str
    session_id: str | None = None
    token_id: str | None = None
    user_name: str | None = None
    detail: str | None = None
    role: str | None = None


def foreign_origin_detail(origin: str | None) -> str:
    """What a person refused by the Origin rule is told (the same text on every door)."""
    seen = f"a page at {origin}" if origin and origin != "null" else "another site"
    return (
        f"This request came from {seen}, which is not one of the gateway's own addresses. "
        "If that is how you reach the gateway, add the address to [listen] public_url or "
        "[auth] public_hostnames."
    )


def same_origin(
    origin: str | None, fetch_site: str | None, *, names: OwnNames, page_port: int
) -> bool:
    """The Origin rule (rule 2): whether a browser's request comes from the gateway's own
    pages. Without ``Origin`` (or ``null``) only ``Sec-Fetch-Site`` can tell; without
    either, the client is no browser and nothing says it is foreign."""
    if origin is not None and origin.strip() != "null":
        return names.is_own_origin(origin, page_port=page_port)
    return (fetch_site or "").strip().lower() not in ("cross-site", "same-site")


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
    if (facts.websocket or facts.method not in SAFE_METHODS) and not same_origin(
        facts.origin, facts.fetch_site, names=config.names, page_port=config.web_port
    ):
        return Verdict("forbidden", "foreign_origin", detail=foreign_origin_detail(facts.origin))
    if config.trusted_networks.decide(facts.client_address).allowed and config.names.is_own_host(
        facts.host
    ):
        return Verdict("admit", "trusted_network")
    identity = identify(
        session_token=facts.session_token,
        authorization=facts.authorization,
        auth=auth,
        last_seen=last_seen,
        now=now,
    )
    if isinstance(identity, str):
        if facts.navigation and not facts.websocket and identity != "invalid_token":
            return Verdict("login", identity)
        return Verdict("unauthorized", identity)
    refusal = refuse_identity(facts, identity)
    if refusal is not None:
        return Verdict(
            "forbidden",
            refusal,
            session_id=identity.session_id,
            token_id=identity.token_id,
            user_name=identity.user_name,
            role=identity.role,
        )
    return Verdict(
        "admit",
        identity.via,
        session_id=identity.session_id,
        token_id=identity.token_id,
        user_name=identity.user_name,
        role=identity.role,
    )


def cemm_path(facts: RequestFacts) -> str:
    """The path as the CEMM's port sees it: the tunnel's prefix is not the CEMM's."""
    if facts.listener == "web" and is_ws_tunnel(facts.path):
        rest = facts.path[len(WS_TUNNEL_PREFIX) :]
        return rest if rest.startswith("/") else "/" + rest
    return facts.path


def in_scope(facts: RequestFacts, scopes: tuple[str, ...]) -> bool:
    """Whether a scoped token's scopes admit this request (rule 4: scopes name a port)."""
    to_ws_port = facts.listener == "ws" or (facts.listener == "web" and is_ws_tunnel(facts.path))
    if facts.websocket != to_ws_port:
        return False
    return scope_admits(scopes, cemm_path(facts), websocket=facts.websocket)


def refuse_identity(facts: RequestFacts, identity: Identity) -> str | None:
    """Why this identity may not make this request (rule 4), or None when it may."""
    if identity.role == VIEWER:
        if facts.method not in VIEWER_METHODS or facts.body:
            return "viewer_read_only"
        if facts.method_override:
            return "method_override"
    if identity.via == "token":
        if not identity.may_use(facts.method) or (identity.read_only and facts.body):
            return "read_only_token"
        if identity.scopes and not in_scope(facts, identity.scopes):
            return "out_of_scope"
        return None
    if facts.websocket and facts.origin is None:
        return "missing_origin"
    return None


SESSION_COOKIE = "cemm_session"
SECURE_SESSION_COOKIE = "__Host-cemm_session"


def session_cookie_name(*, tls: bool) -> str:
    """``__Host-`` needs ``Secure``, which needs HTTPS: the plain name is for plain HTTP."""
    return SECURE_SESSION_COOKIE if tls else SESSION_COOKIE
