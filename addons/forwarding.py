"""What the CEMM (or the admin app) receives, and what comes back about it.

For an admitted request this addon:
- points it at the upstream for its listener (the CEMM's web or ws port, or the admin app)
  and sends the CEMM its own address as ``Host`` (``keep_host_header`` is on, so the host
  the browser used is still known here and kept for the later checks);
- removes every forwarding, "real IP", URL-override and method-override header the client
  sent (:data:`gateway.policy.forwarded.CLIENT_SUPPLIED_HEADERS`, also when the name is
  written with ``_`` for ``-``) and sets
  ``X-Forwarded-For``, ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` from what the
  gateway itself knows;
- on the admin listener, adds the secret that proves the request came through this door;
- drops the client's ``Sec-WebSocket-Extensions`` offer, so a WebSocket is never
  compressed (permessage-deflate) between the gateway and the CEMM, and therefore not
  towards the client either: mitmproxy relays every message of a compressed socket by
  inflating and deflating it again, on each side, and keeps two zlib states per side for
  the socket's lifetime. For a stream of small JSON readings that costs more CPU time and
  memory per socket than it saves in bytes (``bench/results.md``).

On the way back, a ``Location`` header that points at the CEMM's own address is rewritten
to the address the browser used, so redirects keep the browser on the gateway.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from mitmproxy import http
from mitmproxy.net.http import url
from mitmproxy.utils import strutils

from addons.authentication import TO_APP
from addons.base import DENIED, fail_closed, listener_of
from addons.client_address import CLIENT_ADDRESS, FORWARDED_HOST, FORWARDED_PROTO
from gateway.auth import tokens
from gateway.policy.access import WS_TUNNEL_PREFIX, is_ws_tunnel
from gateway.policy.cookies import without_cookie
from gateway.policy.forwarded import CLIENT_SUPPLIED_HEADERS
from gateway.proxy.state import INTERNAL_HEADER, ProxyState

ORIGINAL_HOST = "cemm_gateway.original_host"
ORIGINAL_SCHEME = "cemm_gateway.original_scheme"

_DROPPED = frozenset(
    {
        *(name.encode() for name in CLIENT_SUPPLIED_HEADERS),
        INTERNAL_HEADER.lower().encode(),
        b"sec-websocket-extensions",
    }
)


class Forwarding:
    def __init__(self, state: ProxyState) -> None:
        self.state = state

    @fail_closed
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        request = flow.request
        # Never let a client-supplied internal header reach anything, denied or not.
        request.headers.pop(INTERNAL_HEADER, None)
        if flow.metadata.get(DENIED):
            return
        listener = listener_of(self.state, flow.client_conn)
        assert listener is not None  # ClientAddress denied the request otherwise
        scheme = flow.metadata.get(FORWARDED_PROTO) or (
            "https" if flow.client_conn.tls_established else "http"
        )
        original_host = flow.metadata.get(FORWARDED_HOST) or request.host_header or ""
        flow.metadata[ORIGINAL_HOST] = original_host
        flow.metadata[ORIGINAL_SCHEME] = scheme

        to_app = listener.name == "admin" or bool(flow.metadata.get(TO_APP))
        target = listener.name
        if not to_app and is_ws_tunnel(request.path):
            # /.gateway/ws/live?x -> the CEMM's WebSocket port at /live?x
            request.path = request.path[len(WS_TUNNEL_PREFIX) :] or "/"
            if not request.path.startswith("/"):
                request.path = "/" + request.path
            target = "ws"
        host, port = self.state.upstream.address_for("admin" if to_app else target)
        request.scheme = "http"
        request.host = host
        request.port = port
        request.host_header = url.hostport("http", host, port)

        added = [
            ("X-Forwarded-For", flow.metadata.get(CLIENT_ADDRESS, flow.client_conn.peername[0])),
            ("X-Forwarded-Proto", scheme),
        ]
        if original_host:
            added.append(("X-Forwarded-Host", original_host))
        if to_app:
            added.append((INTERNAL_HEADER, self.state.internal_secret))
        request.headers.fields = forwarded_fields(
            request.headers.fields,
            added,
            session_cookie=None if to_app else self.state.session_cookie,
        )

    @fail_closed
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        if response is None or flow.metadata.get(DENIED):
            return
        location = response.headers.get("location")
        if location:
            rewritten = rewrite_location(
                location,
                upstream=(flow.request.host, flow.request.port),
                original_host=flow.metadata.get(ORIGINAL_HOST, ""),
                original_scheme=flow.metadata.get(ORIGINAL_SCHEME, "http"),
            )
            if rewritten != location:
                response.headers["location"] = rewritten


def forwarded_fields(
    fields: tuple[tuple[bytes, bytes], ...],
    added: list[tuple[str, str]],
    *,
    session_cookie: str | None,
) -> tuple[tuple[bytes, bytes], ...]:
    """The header fields the upstream gets, built in one pass over the client's.

    Dropped: the client's forwarding headers (also when written with ``_`` for ``-``) and
    WebSocket extension offer; with
    ``session_cookie`` (requests for the CEMM) also the gateway's session cookie and
    ``Authorization: Bearer cgw_...`` API tokens, which the CEMM must never see (it might
    log them). ``added`` is appended. One pass, because each ``Headers.pop`` scans and
    decodes every field again.
    """
    kept: list[tuple[bytes, bytes]] = []
    for name, value in fields:
        lowered = name.lower()
        # Some servers (CGI, WSGI) read "_" in a header name as "-": X_Forwarded_For too.
        if lowered.replace(b"_", b"-") in _DROPPED:
            continue
        if session_cookie is not None:
            if lowered == b"cookie":
                value = without_cookie(value, session_cookie)
                if not value:
                    continue
            elif lowered == b"authorization" and _is_api_token(value):
                continue
        kept.append((name, value))
    kept += [(name.encode(), _bytes(value)) for name, value in added]
    return tuple(kept)


def _bytes(text: str) -> bytes:
    return strutils.always_bytes(text, "utf-8", "surrogateescape")


def _is_api_token(authorization: bytes) -> bool:
    # Read exactly as gateway.policy.access reads it, so nothing it would accept is passed.
    scheme, _, rest = authorization.decode("utf-8", "surrogateescape").partition(" ")
    return scheme.lower() == "bearer" and rest.strip().startswith(f"{tokens.API_TOKEN_PREFIX}_")


def rewrite_location(
    location: str, *, upstream: tuple[str, int], original_host: str, original_scheme: str
) -> str:
    """Point an absolute ``Location`` at the gateway when it names the upstream itself."""
    try:
        parts = urlsplit(location)
        port = parts.port
    except ValueError:
        return location
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        return location
    default_port = 443 if parts.scheme in ("https", "wss") else 80
    if (parts.hostname.lower(), port or default_port) != (upstream[0].lower(), upstream[1]):
        return location
    if not original_host:
        return urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))
    scheme = original_scheme
    if parts.scheme in ("ws", "wss"):
        scheme = "wss" if original_scheme == "https" else "ws"
    return urlunsplit((scheme, original_host, parts.path or "/", parts.query, parts.fragment))
