"""A request id for every proxied request, and the optional access log.

Runs first: ``requestheaders`` gives the request a random id (``flow.metadata``) and sets
:data:`gateway.logs.request_id`, so whatever the later addons log while deciding about the
request carries the id. An ``X-Request-ID`` sent by the client is not believed (it would
let a client write into the gateway's log) and is not forwarded.

With ``[log] access = true`` one line per request goes to the ``cemm_gateway.access``
logger when it ends (``response`` or ``error``): listener, client address, method, the
path *without* its query (queries can carry login codes and tokens) and with the secret of
a one-time link blanked (:func:`gateway.logs.loggable_path`), status, duration and the id.
Headers, cookies and bodies are never logged.

Logging only: nothing here can refuse or change a request, and a failure here is logged
and ignored.
"""

from __future__ import annotations

import logging
import secrets
import time

from mitmproxy import http

from addons.base import DENIED, listener_of
from addons.client_address import CLIENT_ADDRESS
from gateway import logs
from gateway.proxy.state import ProxyState

REQUEST_ID = "cemm_gateway.request_id"
STARTED = "cemm_gateway.started"

access_logger = logging.getLogger("cemm_gateway.access")
logger = logging.getLogger("cemm_gateway.proxy")


def new_request_id() -> str:
    return secrets.token_hex(6)


class RequestLog:
    def __init__(self, state: ProxyState, *, access: bool = False) -> None:
        self.state = state
        self.access = access

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        try:
            rid = new_request_id()
            flow.metadata[REQUEST_ID] = rid
            flow.metadata[STARTED] = time.monotonic()
            flow.request.headers.pop("x-request-id", None)
            logs.request_id.set(rid)
        except Exception:  # pragma: no cover - logging must never stop a request
            logger.exception("assigning a request id failed")

    def response(self, flow: http.HTTPFlow) -> None:
        self._finish(flow, flow.response.status_code if flow.response else None)

    def error(self, flow: http.HTTPFlow) -> None:
        self._finish(flow, flow.response.status_code if flow.response else None)

    def _finish(self, flow: http.HTTPFlow, status: int | None) -> None:
        try:
            rid = flow.metadata.get(REQUEST_ID)
            if self.access and rid is not None and not flow.metadata.get("cemm_gateway.logged"):
                flow.metadata["cemm_gateway.logged"] = True
                started = flow.metadata.get(STARTED)
                duration = time.monotonic() - started if isinstance(started, float) else None
                listener = listener_of(self.state, flow.client_conn)
                path = logs.loggable_path(flow.request.path)
                access_logger.info(
                    "%s %s %s",
                    flow.request.method,
                    path,
                    status if status is not None else "-",
                    extra={
                        "request_id": rid,
                        "fields": {
                            "listener": listener.name if listener else None,
                            "client": flow.metadata.get(
                                CLIENT_ADDRESS, flow.client_conn.peername[0]
                            ),
                            "method": flow.request.method,
                            "path": path,
                            "status": status,
                            "denied": flow.metadata.get(DENIED) or None,
                            "websocket": flow.websocket is not None,
                            "duration_ms": round(duration * 1000, 1)
                            if duration is not None
                            else None,
                            "error": flow.error.msg if flow.error else None,
                        },
                    },
                )
        except Exception:  # pragma: no cover - logging must never stop a request
            logger.exception("writing the access log failed")
        finally:
            logs.request_id.set(None)
