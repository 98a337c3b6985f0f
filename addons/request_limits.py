"""Bounds and hygiene for request heads, checked before anything else reads them.

mitmproxy has no header-size limit and forwards header values containing NUL, a bare CR
or LF, or an obs-fold continuation unchanged. Such a head is refused here, in
``requestheaders``, before the request is admitted or anything reaches the CEMM:
431 for heads over ``[limits] max_header_bytes``, 413 for a declared body over
``[limits] max_request_body_bytes``, 400 for malformed header bytes. The request target is
made origin-form here too (:func:`normalise_target`), before any routing decision reads it.

The hook only runs once a head is complete, and mitmproxy buffers an incomplete head
without bound (its own ``FIXME: protect against header size DoS`` in
``Http1Server.read_headers``): a client that never ends its head - one endless header
line, or endless header lines - would make the gateway hold everything it sends, before
any login check (measured: +200 MB of RSS for 200 MB sent, no answer). So
:func:`bound_incomplete_heads` wraps that state function: once more than
``max_header_bytes`` are buffered without a complete head, the client gets 431 and its
connection is closed. This touches mitmproxy internals of the pinned version (like
:mod:`gateway.proxy.errorpages`); ``tests/hostile`` covers it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Generator
from typing import Any

from mitmproxy import http
from mitmproxy.proxy import commands, events
from mitmproxy.proxy.layers.http import _http1

from addons.base import deny, fail_closed
from gateway.proxy import errorpages
from gateway.proxy.state import ProxyState

_BAD_IN_NAMES = re.compile(rb"[ \t:\x00\r\n]")
_BAD_IN_VALUES = re.compile(rb"[\x00\r\n]")


def head_size(request: http.Request) -> int:
    size = len(request.method) + len(request.path) + 12
    for name, value in request.headers.fields:
        size += len(name) + len(value) + 4
    return size


def malformed_header(request: http.Request) -> bool:
    for name, value in request.headers.fields:
        if not name or _BAD_IN_NAMES.search(name) or _BAD_IN_VALUES.search(value):
            return True
        if value[:1] in (b" ", b"\t") and value.strip() == b"":
            return True
    return False


def normalise_target(request: http.Request) -> bool:
    """Make the request target origin-form (``/path?query``) with one ``Host``; False if the
    request cannot be read that way (the caller answers 400).

    Every later decision reads ``request.path`` and ``Host``, and whatever the gateway
    forwards is sent in the form it arrived in: an absolute-form target
    (``GET http://x/ HTTP/1.1``) would be forwarded as an absolute URL naming the upstream
    the forwarding addon chose - the admin app's internal loopback port - and the admin app
    would build its redirects from it. As RFC 9112 (section 3.2) tells a server: the
    target's authority replaces ``Host``, and the target becomes origin-form; an HTTP/1.1
    request without ``Host``, or any request with more than one, is refused. ``*``
    (asterisk-form) is only for ``OPTIONS``; any other target that does not start with
    ``/`` is refused.
    """
    if request.authority:
        request.host_header = request.authority
        request.authority = ""
    else:
        hosts = sum(1 for name, _ in request.headers.fields if name.lower() == b"host")
        if hosts > 1 or (hosts == 0 and request.http_version != "HTTP/1.0"):
            return False
    if request.path == "*":
        return request.method == "OPTIONS"
    return request.path.startswith("/")


_bounded_state: ProxyState | None = None
"""The state whose limit applies to incomplete heads (the gateway of this process)."""


def _bounded(
    read_headers: Callable[..., Generator[Any, Any, None]],
) -> Callable[..., Generator[Any, Any, None]]:
    @functools.wraps(read_headers)
    def bounded_read_headers(self: Any, event: events.Event) -> Generator[Any, Any, None]:
        yield from read_headers(self, event)
        state = _bounded_state
        if (
            state is not None
            and isinstance(event, events.DataReceived)
            and self.state == self.read_headers  # still no complete head
            and len(self.buf) > state.limits.max_header_bytes
        ):
            state.count_denial("headers_too_large")
            yield commands.SendData(self.conn, errorpages.PLAIN.raw_response(431))
            yield commands.CloseConnection(self.conn)
            self.state = self.done

    bounded_read_headers.__cemm_bounded__ = True  # type: ignore[attr-defined]
    return bounded_read_headers


def bound_incomplete_heads(state: ProxyState) -> None:
    """Refuse (431) a request head that outgrows ``state.limits`` before it is complete."""
    global _bounded_state
    _bounded_state = state
    server = _http1.Http1Server
    if not getattr(server.read_headers, "__cemm_bounded__", False):
        server.read_headers = _bounded(server.read_headers)  # type: ignore[method-assign]


class RequestLimits:
    def __init__(self, state: ProxyState) -> None:
        self.state = state
        bound_incomplete_heads(state)

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
        if not normalise_target(request):
            deny(self.state, flow, 400, "bad_request_target")
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
