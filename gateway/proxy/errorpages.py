"""The gateway's own error pages, and the replacement for mitmproxy's.

mitmproxy answers parser errors and upstream failures itself, before any addon hook, with a
page that carries ``Server: mitmproxy <version>`` and the raw error text (errno, internal
addresses). :func:`install` replaces its HTTP/1 error-response builder (an internal function
of the pinned mitmproxy version; ``tests/unit/test_errorpages.py`` breaks if it moves) with
one that renders the gateway's page and drops the internal message. The gateway only
speaks HTTP/1.1 to clients (HTTP/2 is off), so that builder is the only one in use.

The 502/503 text comes from a describer set by the app - the upstream monitor's
(:meth:`gateway.upstream.monitor.UpstreamMonitor.describe`) - so the page says in plain
words what is wrong: "The CEMM at 192.168.2.34 has not answered on port 80 since 10:42.",
or, while the CEMM is followed by MAC and not confirmed, that the gateway is looking for
it. Only admitted requests are ever sent towards the CEMM (and only they get the 503 of
``addons/upstream_identity.py``), so only people allowed to use the CEMM see its address.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Callable
from http import HTTPStatus

from mitmproxy import http
from mitmproxy.net.http import http1
from mitmproxy.proxy.layers.http import _http1

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:0;padding:2rem 1rem;background:#f5f6f8;"
    "color:#1d2330}main{max-width:32rem;margin:auto;background:#fff;border-radius:12px;"
    "padding:1.5rem;box-shadow:0 1px 4px #0002}h1{font-size:1.3rem;margin:0 0 .5rem}"
    "p{line-height:1.5}small{color:#667}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

# The content security policy of every page the gateway itself renders.
PAGE_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

_MESSAGES: dict[int, tuple[str, str]] = {
    400: ("Bad request", "The gateway could not understand this request."),
    401: ("Login required", "You need to log in to open this page."),
    403: ("Access denied", "This address or account may not open this page."),
    404: ("Not found", "There is nothing at this address."),
    405: ("Method not allowed", "This page does not accept that kind of request."),
    408: ("Request timeout", "The request took too long to arrive."),
    411: ("Length required", "Request bodies must state their length."),
    413: ("Request too large", "The request body is larger than the gateway accepts."),
    414: ("Address too long", "The requested address is longer than the gateway accepts."),
    431: ("Headers too large", "The request headers are larger than the gateway accepts."),
    500: ("Gateway error", "The gateway could not handle this request. Nothing was sent on."),
    501: ("Not implemented", "The gateway does not support this request."),
    502: ("The CEMM is not answering", "The gateway is running, but the CEMM did not answer."),
    503: ("The CEMM is unavailable", "The gateway is running, but the CEMM is unavailable."),
    504: ("The CEMM is too slow", "The gateway is running, but the CEMM answered too slowly."),
}

# Set by the app: returns a plain-language sentence about the CEMM's state, or None.
upstream_describer: Callable[[], str | None] = lambda: None  # noqa: E731


def error_body(status: int, detail: str | None = None) -> bytes:
    title, message = _MESSAGES.get(
        status,
        (HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error", ""),
    )
    if status in (502, 503, 504):
        detail = detail or upstream_describer()
    extra = f"<p>{html.escape(detail)}</p>" if detail else ""
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{status} {html.escape(title)}</title><style>{_STYLE}</style></head><body><main>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{extra}"
        f"<small>cemm-gateway &middot; {status}</small></main></body></html>"
    )
    return page.encode()


def error_response(status: int, detail: str | None = None, *, close: bool = False) -> http.Response:
    """A complete response with the gateway's page and security headers."""
    headers = {"Content-Type": "text/html; charset=utf-8", **SECURITY_HEADERS}
    if close:
        headers["Connection"] = "close"
    return http.Response.make(status, error_body(status, detail), headers)


def raw_error_response(status: int, detail: str | None = None) -> bytes:
    """The same page as bytes on the wire, for answering outside mitmproxy's flow."""
    return http1.assemble_response(error_response(status, detail, close=True))


def _make_error_response(status_code: int, message: str = "") -> bytes:
    # mitmproxy's message can hold errno text and addresses: it is dropped on purpose.
    return raw_error_response(status_code)


def install() -> None:
    """Replace mitmproxy's HTTP/1 error-response builder (idempotent)."""
    _http1.make_error_response = _make_error_response
