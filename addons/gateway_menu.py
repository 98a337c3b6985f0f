"""Puts the gateway's menu on every CEMM page the gateway serves as HTML.

With ``[ui] menu`` on (the default), every admitted 200 ``text/html`` answer of the CEMM
(:func:`addons.page_fixup.editable_page`) gets one ``<script>`` tag at the top of
``<head>``: the gateway's ``/.gateway/static/menu.js`` (same origin, with an ``integrity``
hash, ``async``: it never holds up the CEMM's own scripts, which the time to the first
live reading depends on), which draws a small fixed button that opens who is signed in, the
account page, log out and, for admins, the admin app (:mod:`gateway.portal.menu`).

The CEMM's own ``Content-Security-Policy`` is widened just as for the WebSocket fix-up
(:func:`addons.page_fixup.widen_csp`): the script's hash and ``'self'`` for scripts,
``'self'`` for connections (the menu asks ``/.gateway/menu`` when opened), and ``'self'``
for ``form-action`` where the CEMM restricts forms (the log-out form). Styles need
nothing: the script sets them through the CSSOM, which no ``style-src`` forbids. Pages
larger than :data:`~addons.page_fixup.MAX_PAGE_BYTES` pass through unchanged (and
streamed), as do answers to ``HEAD``, WebSocket traffic and everything that is not HTML.
"""

from __future__ import annotations

from pathlib import Path

from mitmproxy import http

from addons.base import fail_closed
from addons.page_fixup import (
    FIXUP,
    MAX_PAGE_BYTES,
    editable_page,
    inject,
    script_integrity,
    widen_csp,
    widen_policies,
)
from gateway.proxy.state import ProxyState

MENU = "cemm_gateway.menu"
SCRIPT_PATH = "/.gateway/static/menu.js"
SCRIPT_FILE = Path(__file__).resolve().parent.parent / "gateway" / "portal" / "static" / "menu.js"


def menu_tag(integrity: str) -> bytes:
    return f'<script src="{SCRIPT_PATH}" integrity="{integrity}" async></script>'.encode()


def menu_csp(policy: str, integrity: str) -> str:
    """One CEMM policy widened just enough for the menu."""
    return widen_csp(
        policy,
        {
            "script-src": ["'self'", f"'{integrity}'"],
            "connect-src": ["'self'"],
            "form-action": ["'self'"],
        },
    )


class GatewayMenu:
    def __init__(self, state: ProxyState) -> None:
        self.state = state
        self.integrity = script_integrity(SCRIPT_FILE.read_bytes())
        self.tag = menu_tag(self.integrity)

    @fail_closed
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.request.method != "HEAD" and editable_page(flow):
            flow.metadata[MENU] = True
            flow.metadata[FIXUP] = True  # buffered, not streamed (addons/upstream.py)

    @fail_closed
    def response(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        if response is None or not flow.metadata.get(MENU):
            return
        page = response.content or b""
        if len(page) > MAX_PAGE_BYTES:
            return
        response.content = inject(page, self.tag)
        widen_policies(response, lambda policy: menu_csp(policy, self.integrity))
