"""With TLS on, every listener speaks HTTPS: plain HTTP is redirected, HSTS is optional.

mitmproxy's reverse listener accepts TLS and plain HTTP on the same port. A plain request
gets a 308 to the same URL over ``https`` (a WebSocket upgrade, which a browser cannot
redirect, gets 403); nothing goes upstream. A request from a trusted reverse proxy that
says (``X-Forwarded-Proto``, read by :mod:`addons.client_address`) the browser came over
HTTPS counts as HTTPS: redirecting it would loop. With ``[tls] hsts`` every answer over
HTTPS carries ``Strict-Transport-Security``.
"""

from __future__ import annotations

from mitmproxy import http

from addons.base import DENIED, deny, fail_closed, refuse
from addons.client_address import FORWARDED_PROTO
from addons.upgrades import wants_websocket
from gateway.proxy.state import ProxyState


class HttpsOnly:
    def __init__(self, state: ProxyState, *, hsts_max_age: int | None) -> None:
        self.state = state
        self.hsts = f"max-age={hsts_max_age}" if hsts_max_age is not None else None

    @fail_closed
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if _over_https(flow) or flow.metadata.get(DENIED):
            return
        if wants_websocket(flow):
            deny(self.state, flow, 403, "plain_http")
            return
        host = flow.request.host_header or ""
        if not host or any(c in host for c in "/\\@ "):
            deny(self.state, flow, 400, "plain_http")
            return
        refuse(
            self.state,
            flow,
            http.Response.make(
                308,
                b"",
                {"Location": f"https://{host}{flow.request.path}", "Cache-Control": "no-store"},
            ),
            "plain_http",
            counter="plain_http_redirected",
        )

    @fail_closed
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if self.hsts and flow.response is not None and _over_https(flow):
            flow.response.headers["Strict-Transport-Security"] = self.hsts


def _over_https(flow: http.HTTPFlow) -> bool:
    return flow.client_conn.tls_established or flow.metadata.get(FORWARDED_PROTO) == "https"
