"""What every gateway addon shares: fail-closed hooks and one way to refuse a request.

mitmproxy logs an exception raised in an addon hook and then carries on: the request is
forwarded as if the hook had approved it. Every hook of ours is therefore wrapped in
:func:`fail_closed`, which turns an exception into a refusal - a 500 page for an HTTP
request, a dropped connection for a client or a WebSocket - and never a forward.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from mitmproxy import connection, ctx, http
from mitmproxy.net.http import http1

from gateway.proxy import errorpages
from gateway.proxy.state import Listener, ProxyState

logger = logging.getLogger("cemm_gateway.proxy")


DENIED = "cemm_gateway.denied"


def listener_of(state: ProxyState, client: connection.Client) -> Listener | None:
    mode = client.proxy_mode
    return state.listener_for_spec(mode.full_spec) if mode is not None else None


def close_client(client: connection.Client) -> bool:
    """Close a live client connection, WebSockets included; False if it is already gone.

    ``flow.kill()`` does not stop an established WebSocket; closing the client's transport
    through the proxy server's connection handler does (internal API of the pinned version,
    covered by the integration tests).
    """
    proxyserver = ctx.master.addons.get("proxyserver")
    handler = proxyserver.connections.get(client.id) if proxyserver else None
    if handler is None or client not in handler.transports:
        return False
    handler.close_connection(client)
    return True


def _has_body(request: http.Request) -> bool:
    if "transfer-encoding" in request.headers:
        return True
    length = request.headers.get("content-length", "0").strip()
    return length not in ("", "0")


def refuse(
    state: ProxyState,
    flow: http.HTTPFlow,
    response: http.Response,
    reason: str,
    *,
    counter: str | None = None,
) -> None:
    """The one way to answer a request instead of forwarding it: error pages, the login
    redirect and the HTTPS redirect alike. Counts ``counter`` (default ``reason``).

    It never reads a body: a request whose body has not been read yet is answered at once
    and its connection closed, so a refused client cannot make the gateway buffer a body it
    will never use; and ``Expect: 100-continue`` is dropped, so mitmproxy does not invite
    the client to send that body (it answers ``100 Continue`` after the request hooks
    unless the header is gone).
    """
    if flow.metadata.get(DENIED):
        return
    flow.metadata[DENIED] = reason
    state.count_denial(counter or reason)
    flow.request.stream = False
    flow.request.headers.pop("expect", None)
    if flow.request.data.content is None and _has_body(flow.request):
        transport = _client_writer(flow.client_conn)
        if transport is not None:
            response.headers["Connection"] = "close"
            transport.write(http1.assemble_response(response))
            flow.kill()
            close_client(flow.client_conn)
            return
    flow.response = response


def deny(
    state: ProxyState, flow: http.HTTPFlow, status: int, reason: str, detail: str | None = None
) -> None:
    """Refuse a request with the gateway's error page for ``status``; count why."""
    pages = state.error_pages or errorpages.PLAIN
    language = flow.request.headers.get("accept-language")
    response = pages.response(status, detail, close=status >= 500, accept_language=language)
    refuse(state, flow, response, reason)


def _client_writer(client: connection.Client) -> Any:
    proxyserver = ctx.master.addons.get("proxyserver")
    handler = proxyserver.connections.get(client.id) if proxyserver else None
    io = handler.transports.get(client) if handler else None
    return io.writer if io is not None else None


def _refuse_after_error(state: ProxyState, subject: object) -> None:
    if isinstance(subject, connection.Client):
        subject.error = "refused: gateway error"
        state.count_denial("internal_error")
    elif isinstance(subject, http.HTTPFlow):
        if subject.websocket is not None and subject.websocket.timestamp_end is None:
            state.count_denial("internal_error")
            close_client(subject.client_conn)
        else:
            subject.metadata.pop(DENIED, None)
            deny(state, subject, 500, "internal_error")
    else:
        # Server connection hooks and the like: cut the client off.
        client = getattr(subject, "client", None)
        if isinstance(client, connection.Client):
            close_client(client)


def fail_closed[Hook: Callable[..., Any]](hook: Hook) -> Hook:
    """Wrap an addon hook so that an exception refuses instead of forwarding."""

    @functools.wraps(hook)
    def wrapper(self: Any, subject: Any) -> Any:
        try:
            return hook(self, subject)
        except Exception:
            logger.exception("%s.%s failed; refusing", type(self).__name__, hook.__name__)
            try:
                _refuse_after_error(self.state, subject)
            except Exception:  # pragma: no cover - last resort
                logger.exception("refusing after an addon error failed too")
                if isinstance(subject, http.HTTPFlow):
                    subject.kill()
            return None

    return wrapper  # type: ignore[return-value]
