"""The gateway's own error pages, and the replacement for mitmproxy's.

mitmproxy answers parser errors and upstream failures itself, before any addon hook, with
a page that carries ``Server: mitmproxy <version>`` and the raw error text (errno,
internal addresses). :meth:`ErrorPages.install` replaces its HTTP/1 error-response builder
(an internal function of the pinned mitmproxy version; ``tests/unit/test_errorpages.py``
breaks if it moves) with one that renders the gateway's page and drops the internal
message. The gateway only speaks HTTP/1.1 to clients (HTTP/2 is off), so that builder is
the only one in use.

The pages are an :class:`ErrorPages` object the app makes with a describer - the upstream
monitor's (:meth:`gateway.upstream.monitor.UpstreamMonitor.describe`) - and hands to the
engine (which installs it) and the proxy state (which the addons' refusals use). The
502/503/504 text comes from that describer, so the page says in plain words what is wrong:
"The CEMM at 192.168.2.34 has not answered on port 80 since 10:42.", or, while the CEMM is
followed by MAC and not confirmed, that the gateway is looking for it. Only admitted
requests are ever sent towards the CEMM (and only they get the 503 of
``addons/upstream_identity.py``), so only people allowed to use the CEMM see its address.

Each page is in the reader's language (:mod:`gateway.i18n`): ``[ui] language`` unless it
is ``auto``, else the request's ``Accept-Language``, else English. (The account's own
choice is the web app's to apply: the proxy refuses before it knows who is asking.)
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

from gateway import i18n
from gateway.i18n import N_
from gateway.i18n import gettext as _

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
    400: (N_("Bad request"), N_("The gateway could not understand this request.")),
    401: (N_("Login required"), N_("You need to log in to open this page.")),
    403: (N_("Access denied"), N_("This address or account may not open this page.")),
    404: (N_("Not found"), N_("There is nothing at this address.")),
    405: (N_("Method not allowed"), N_("This page does not accept that kind of request.")),
    408: (N_("Request timeout"), N_("The request took too long to arrive.")),
    411: (N_("Length required"), N_("Request bodies must state their length.")),
    413: (N_("Request too large"), N_("The request body is larger than the gateway accepts.")),
    414: (N_("Address too long"), N_("The requested address is longer than the gateway accepts.")),
    431: (N_("Headers too large"), N_("The request headers are larger than the gateway accepts.")),
    500: (
        N_("Gateway error"),
        N_("The gateway could not handle this request. Nothing was sent on."),
    ),
    501: (N_("Not implemented"), N_("The gateway does not support this request.")),
    502: (
        N_("The CEMM is not answering"),
        N_("The gateway is running, but the CEMM did not answer."),
    ),
    503: (
        N_("The CEMM is unavailable"),
        N_("The gateway is running, but the CEMM is unavailable."),
    ),
    504: (
        N_("The CEMM is too slow"),
        N_("The gateway is running, but the CEMM answered too slowly."),
    ),
}

Describer = Callable[[], str | None]


def _nothing_known() -> str | None:
    return None


def error_body(status: int, detail: str | None = None, language: str = i18n.ENGLISH) -> bytes:
    """The page for ``status`` in ``language``, with ``detail`` as an extra paragraph."""
    with i18n.use_language(language) as language:
        title, message = _MESSAGES.get(
            status,
            (HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error", ""),
        )
        title, message = _(title), _(message) if message else ""
    extra = f"<p>{html.escape(detail)}</p>" if detail else ""
    page = (
        f"<!doctype html><html lang={language}><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{status} {html.escape(title)}</title><style>{_STYLE}</style></head><body><main>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{extra}"
        f"<small>cemm-gateway &middot; {status}</small></main></body></html>"
    )
    return page.encode()


class ErrorPages:
    """The gateway's error pages; a 502, 503 or 504 without a detail of its own says what
    ``describe_upstream`` knows about the CEMM."""

    def __init__(
        self, describe_upstream: Describer = _nothing_known, *, language: str = i18n.AUTO
    ) -> None:
        self.describe_upstream = describe_upstream
        #: ``[ui] language``: ``auto`` lets each request's ``Accept-Language`` decide.
        self.language = language

    def body(
        self, status: int, detail: str | None = None, accept_language: str | None = None
    ) -> bytes:
        language = i18n.choose(
            account=None, configured=self.language, accept_language=accept_language
        )
        if status in (502, 503, 504):
            with i18n.use_language(language):
                detail = detail or self.describe_upstream()
        return error_body(status, detail, language)

    def response(
        self,
        status: int,
        detail: str | None = None,
        *,
        close: bool = False,
        accept_language: str | None = None,
    ) -> http.Response:
        """A complete response with the gateway's page and security headers, in the
        language of ``[ui] language`` or else of the request's ``accept_language``."""
        headers = {"Content-Type": "text/html; charset=utf-8", **SECURITY_HEADERS}
        if close:
            headers["Connection"] = "close"
        body = self.body(status, detail, accept_language)
        return http.Response.make(status, body, headers)

    def raw_response(self, status: int, detail: str | None = None) -> bytes:
        """The same page as bytes on the wire, for answering outside mitmproxy's flow."""
        return http1.assemble_response(self.response(status, detail, close=True))

    def _mitmproxy_error(self, status_code: int, message: str = "") -> bytes:
        # mitmproxy's message can hold errno text and addresses: it is dropped on purpose.
        return self.raw_response(status_code)

    def install(self) -> None:
        """Replace mitmproxy's HTTP/1 error-response builder with these pages."""
        _http1.make_error_response = self._mitmproxy_error


PLAIN = ErrorPages()
"""The pages without a describer: what a refusal uses where no app made its own."""
