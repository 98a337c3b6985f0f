"""The connection to the upstream: a connect deadline, health bookkeeping, streaming.

- mitmproxy has no upstream connect timeout (a switched-off CEMM would hold a browser until
  the kernel gives up on SYN retries). ``server_connect`` runs in the task that is about
  to connect, so it arms a timer that cancels that task after ``[upstream]
  connect_timeout``; mitmproxy then answers 502, which the gateway's error page renders.
- Every connect success or failure updates :class:`UpstreamStatus`, which the 502 page
  and the status views read.
- Admitted request bodies and all responses are streamed (decided only after the access
  checks, so nothing is sent upstream before the request was admitted); WebSocket
  message history is dropped after each message so a socket open for days uses constant
  memory.

This addon must be added last: its ``requestheaders`` marks admitted requests.
"""

from __future__ import annotations

import asyncio
import time

from mitmproxy import http
from mitmproxy.proxy import server_hooks

from addons.base import DENIED, close_client, fail_closed
from gateway.proxy.state import ProxyState

# Set by addons.page_fixup for pages it edits (those are not streamed).
PAGE_FIXUP = "cemm_gateway.page_fixup"


class BodyLimit:
    """Streams a request body until it passes the limit, then cuts the client off.

    The request is already on its way to the CEMM, so a 413 is no longer possible; the
    connection is closed instead, and the CEMM sees an unfinished body it discards.
    """

    def __init__(self, state: ProxyState, flow: http.HTTPFlow, limit: int) -> None:
        self.state = state
        self.flow = flow
        self.limit = limit
        self.seen = 0
        self.tripped = False

    def __call__(self, chunk: bytes) -> bytes:
        self.seen += len(chunk)
        if self.seen <= self.limit:
            return chunk
        if not self.tripped:
            self.tripped = True
            self.state.denials["body_too_large"] += 1
            close_client(self.flow.client_conn)
        return b""


class Upstream:
    def __init__(self, state: ProxyState) -> None:
        self.state = state
        self._deadlines: dict[str, asyncio.TimerHandle] = {}

    @fail_closed
    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - hooks always run inside a task
            return
        loop = asyncio.get_running_loop()
        self._deadlines[data.server.id] = loop.call_later(
            self.state.upstream.connect_timeout, task.cancel
        )

    def _settle(self, data: server_hooks.ServerConnectionHookData, ok: bool) -> None:
        deadline = self._deadlines.pop(data.server.id, None)
        if deadline is not None:
            deadline.cancel()
        address = data.server.address
        upstream = self.state.upstream
        if address is None or (address[0], address[1]) == (
            upstream.admin_host,
            upstream.admin_port,
        ):
            return
        status = self.state.status.port(address[1])
        if ok:
            status.ok(time.time())
        else:
            status.failed(time.time())

    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        self._settle(data, ok=True)

    def server_connect_error(self, data: server_hooks.ServerConnectionHookData) -> None:
        self._settle(data, ok=False)

    @fail_closed
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(DENIED) or flow.response is not None:
            return
        self.state.requests["admitted"] += 1
        if "content-length" in flow.request.headers:
            flow.request.stream = True  # its size was checked by addons.request_limits
        else:
            # A chunked body's size is known only as it arrives: count it on the way.
            flow.request.stream = BodyLimit(
                self.state, flow, self.state.limits.max_request_body_bytes
            )

    @fail_closed
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if (
            flow.response is not None
            and not flow.metadata.get(DENIED)
            and not flow.metadata.get(PAGE_FIXUP)
        ):
            flow.response.stream = True

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        # Only the message being relayed is needed; mitmproxy would keep every one.
        assert flow.websocket is not None
        flow.websocket.messages.clear()
