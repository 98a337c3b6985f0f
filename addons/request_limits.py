"""Bounds and hygiene for request heads, checked before anything else reads them.

mitmproxy has no header-size limit and forwards header values containing NUL, a bare CR
or LF, or an obs-fold continuation unchanged. Such a head is refused here, in
``requestheaders``, before the request is admitted or anything reaches the CEMM:
431 for heads over ``[limits] max_header_bytes``, 413 for a declared body over
``[limits] max_request_body_bytes``, 400 for malformed header bytes.
"""

from __future__ import annotations

from mitmproxy import http

from addons.base import deny, fail_closed
from gateway.proxy.state import ProxyState

_FORBIDDEN_IN_VALUES = (b"\x00", b"\r", b"\n")


def head_size(request: http.Request) -> int:
    size = len(request.method) + len(request.path) + 12
    for name, value in request.headers.fields:
        size += len(name) + len(value) + 4
    return size


def malformed_header(request: http.Request) -> bool:
    for name, value in request.headers.fields:
        if not name or any(c in name for c in b" \t:\x00\r\n"):
            return True
        if any(bad in value for bad in _FORBIDDEN_IN_VALUES):
            return True
        if value[:1] in (b" ", b"\t") and value.strip() == b"":
            return True
    return False


class RequestLimits:
    def __init__(self, state: ProxyState) -> None:
        self.state = state

    @fail_closed
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        request = flow.request
        limits = self.state.limits
        if head_size(request) > limits.max_header_bytes:
            deny(self.state, flow, 431, "headers_too_large")
            return
        if malformed_header(request):
            deny(self.state, flow, 400, "malformed_header")
            return
        length = request.headers.get_all("content-length")
        if length:
            try:
                size = int(length[0])
            except ValueError:
                deny(self.state, flow, 400, "malformed_header")
                return
            if size > limits.max_request_body_bytes:
                deny(self.state, flow, 413, "body_too_large")
