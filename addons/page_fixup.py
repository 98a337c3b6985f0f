"""Makes the CEMM's own page find its live-data WebSocket through the gateway.

With ``[tls] single_port`` on, every HTML page from the CEMM gets one ``<script>`` tag at
the top of ``<head>``: the gateway's ``/.gateway/static/ws-fixup.js`` (same origin, with
an ``integrity`` hash), which points ``ws://<host>:8090/...`` at the same-origin tunnel
``/.gateway/ws/...`` and ``ws:`` at ``wss:`` under HTTPS. If the CEMM sends a
``Content-Security-Policy``, it is widened just enough: the script's hash and ``'self'``
for scripts, ``'self'`` and this origin's WebSocket URL for connections. Pages larger than
:data:`MAX_PAGE_BYTES` stream through unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from mitmproxy import http

from addons.authentication import TO_APP
from addons.base import DENIED, fail_closed
from addons.forwarding import ORIGINAL_HOST, ORIGINAL_SCHEME
from addons.upstream import PAGE_FIXUP
from gateway.policy.access import WS_TUNNEL_PREFIX
from gateway.proxy.state import ProxyState

FIXUP = PAGE_FIXUP
SCRIPT_PATH = "/.gateway/static/ws-fixup.js"
SCRIPT_FILE = (
    Path(__file__).resolve().parent.parent / "gateway" / "portal" / "static" / "ws-fixup.js"
)
TUNNEL_PREFIX = WS_TUNNEL_PREFIX
MAX_PAGE_BYTES = 4 * 1024 * 1024

_HEAD = re.compile(rb"<head\b[^>]*>", re.IGNORECASE)
_HTML = re.compile(rb"<html\b[^>]*>", re.IGNORECASE)


def script_integrity(source: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(source).digest()).decode()


def script_tag(integrity: str, ws_ports: list[int]) -> bytes:
    ports = ",".join(str(port) for port in ws_ports)
    return (
        f'<script src="{SCRIPT_PATH}" integrity="{integrity}" '
        f'data-ws-ports="{html.escape(ports)}" data-prefix="{TUNNEL_PREFIX}"></script>'
    ).encode()


def inject(page: bytes, tag: bytes) -> bytes:
    """Put ``tag`` first in ``<head>`` (or after ``<html>``, or at the very start)."""
    for pattern in (_HEAD, _HTML):
        match = pattern.search(page)
        if match:
            return page[: match.end()] + tag + page[match.end() :]
    return tag + page


def _directives(policy: str) -> list[tuple[str, list[str]]]:
    parsed = []
    for part in policy.split(";"):
        tokens = part.split()
        if tokens:
            parsed.append((tokens[0].lower(), tokens[1:]))
    return parsed


def widen_csp(policy: str, additions: Mapping[str, list[str]]) -> str:
    """Widen one CEMM policy by ``additions`` (directive -> sources), no more.

    A directive the policy has gets the sources it lacks (``'none'`` goes). A *fetch*
    directive (``script-src``, ``connect-src``, ...) the policy lacks falls back to
    ``default-src``: where that exists, it is added as ``default-src``'s sources plus the
    additions; others (``form-action``) do not fall back and are left absent.
    ``script-src-elem``, where the CEMM sets it, decides for ``<script>`` elements instead
    of ``script-src``: it gets the same sources; where it is absent, ``script-src`` applies.
    """
    directives = _directives(policy)
    names = [name for name, _ in directives]
    default = next((values for name, values in directives if name == "default-src"), None)
    widened = dict(additions)
    if "script-src" in additions:
        widened["script-src-elem"] = additions["script-src"]
    result = []
    for name, values in directives:
        if name in widened:
            values = values + [v for v in widened[name] if v not in values]
            if "'none'" in values:
                values = [v for v in values if v != "'none'"]
        result.append((name, values))
    if default is not None:
        for name, extra in additions.items():
            if name not in names and name.endswith("-src"):
                base = [v for v in default if v != "'none'"]
                result.append((name, base + [v for v in extra if v not in base]))
    return "; ".join(" ".join([name, *values]) for name, values in result)


def adjust_csp(policy: str, *, integrity: str, ws_origin: str) -> str:
    """Widen one CEMM policy just enough for the fix-up script and the tunnel socket."""
    return widen_csp(
        policy,
        {"script-src": ["'self'", f"'{integrity}'"], "connect-src": ["'self'", ws_origin]},
    )


def editable_page(flow: http.HTTPFlow) -> bool:
    """A CEMM page the gateway may add to: an admitted 200 ``text/html`` answer of the
    CEMM (not of the gateway's own app), of at most :data:`MAX_PAGE_BYTES` if it says."""
    response = flow.response
    if (
        response is None
        or flow.metadata.get(DENIED)
        or flow.metadata.get(TO_APP)
        or response.status_code != 200
        or not response.headers.get("content-type", "").lower().startswith("text/html")
    ):
        return False
    length = response.headers.get("content-length")
    return length is None or (length.isdigit() and int(length) <= MAX_PAGE_BYTES)


def widen_policies(response: http.Response, widen: Callable[[str], str]) -> None:
    """Apply ``widen`` to every CSP the CEMM sent, enforced and report-only."""
    for header in ("content-security-policy", "content-security-policy-report-only"):
        policies = response.headers.get_all(header)
        if policies:
            response.headers.set_all(header, [widen(p) for p in policies])


class PageFixup:
    def __init__(self, state: ProxyState, *, ws_ports: list[int]) -> None:
        self.state = state
        source = SCRIPT_FILE.read_bytes()
        self.integrity = script_integrity(source)
        self.tag = script_tag(self.integrity, ws_ports)

    @fail_closed
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if editable_page(flow):
            flow.metadata[FIXUP] = True

    @fail_closed
    def response(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        if response is None or not flow.metadata.get(FIXUP):
            return
        page = response.content or b""
        if len(page) > MAX_PAGE_BYTES:
            return
        response.content = inject(page, self.tag)
        scheme = "wss" if flow.metadata.get(ORIGINAL_SCHEME) == "https" else "ws"
        ws_origin = f"{scheme}://{flow.metadata.get(ORIGINAL_HOST, '')}"
        widen_policies(
            response,
            lambda policy: adjust_csp(policy, integrity=self.integrity, ws_origin=ws_origin),
        )
