"""Every request on the CEMM's ports must belong to a logged-in person (or a trusted
network, or an API token).

Translates each request into :class:`gateway.policy.access.RequestFacts`, asks
:func:`gateway.policy.access.decide_request`, and acts: admit (remembering the session for
the WebSocket registry and the idle timer), hand over to the gateway's web app
(``/.gateway/`` and the admin port), redirect a page navigation to the login page, or
refuse with 401/403. Runs in ``requestheaders``, before any body is read or anything is
sent upstream.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from mitmproxy import http

from addons.base import DENIED, deny, fail_closed, listener_of, refuse
from addons.client_address import CLIENT_ADDRESS, FORWARDED_HOST
from addons.connection_registry import ConnectionRegistry
from addons.upgrades import WEBSOCKET_ADMITTED, wants_websocket
from gateway.policy.access import (
    RequestFacts,
    carries_body,
    decide_request,
    is_method_override,
)
from gateway.policy.cookies import session_cookie
from gateway.proxy.state import ProxyState

TO_APP = "cemm_gateway.to_app"
SESSION_ID = "cemm_gateway.session"
ROLE = "cemm_gateway.role"
"""The admitted identity's role (absent for trusted networks): the WebSocket rules read it."""
LOGIN_PATH = "/.gateway/login"


def is_navigation(request: http.Request) -> bool:
    mode = request.headers.get("sec-fetch-mode")
    if mode is not None:
        return mode == "navigate"
    return request.method in ("GET", "HEAD") and "text/html" in request.headers.get("accept", "")


class Authentication:
    def __init__(self, state: ProxyState, registry: ConnectionRegistry) -> None:
        self.state = state
        self.registry = registry

    @fail_closed
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(DENIED):
            return
        state = self.state
        request = flow.request
        listener = listener_of(state, flow.client_conn)
        assert listener is not None  # ClientAddress denied the request otherwise
        websocket = wants_websocket(flow)
        facts = RequestFacts(
            listener=listener.name,
            method=request.method,
            path=request.path,
            client_address=flow.metadata.get(CLIENT_ADDRESS, ""),
            host=flow.metadata.get(FORWARDED_HOST) or request.host_header or "",
            origin=request.headers.get("origin"),
            fetch_site=request.headers.get("sec-fetch-site"),
            websocket=websocket,
            navigation=is_navigation(request),
            session_token=session_cookie(request.headers.fields, state.session_cookie),
            authorization=request.headers.get("authorization"),
            method_override=any(is_method_override(name) for name in request.headers),
            body=carries_body(
                request.headers.get("content-length"), request.headers.get("transfer-encoding")
            ),
        )
        now = time.time()
        verdict = decide_request(facts, state.access, state.auth, state.session_activity, now=now)
        if verdict.kind == "admit":
            if verdict.session_id is not None:
                state.touch_session(verdict.session_id, now)
                flow.metadata[SESSION_ID] = verdict.session_id
            if verdict.token_id is not None:
                state.touch_token(verdict.token_id, now)
            if verdict.role is not None:
                flow.metadata[ROLE] = verdict.role
            if websocket:
                # Registered before it is forwarded: ending the credential closes it.
                self.registry.note_credential(
                    flow.client_conn, session=verdict.session_id, token=verdict.token_id
                )
                flow.metadata[WEBSOCKET_ADMITTED] = True
            state.count_request(f"admitted_{verdict.reason}")
        elif verdict.kind == "portal":
            flow.metadata[TO_APP] = True
        elif verdict.kind == "login":
            refuse(
                state,
                flow,
                http.Response.make(
                    302,
                    b"",
                    {
                        "Location": f"{LOGIN_PATH}?next={quote(request.path, safe='')}",
                        "Cache-Control": "no-store",
                    },
                ),
                "login_required",
                counter=f"login_required_{verdict.reason}",
            )
        elif verdict.kind == "unauthorized":
            deny(state, flow, 401, verdict.reason)
            if flow.response is not None and verdict.reason == "invalid_token":
                flow.response.headers["WWW-Authenticate"] = 'Bearer realm="cemm-gateway"'
        else:
            deny(state, flow, 403, verdict.reason, verdict.detail)
