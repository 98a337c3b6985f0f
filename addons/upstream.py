"""The connection to the upstream: deadlines, health bookkeeping, streaming.

- mitmproxy has no upstream connect timeout (a switched-off CEMM would hold a browser until
  the kernel gives up on SYN retries). ``server_connect`` runs in the task that is about
  to connect, so it arms a timer that cancels that task after ``[upstream]
  connect_timeout``; mitmproxy then answers 502, which the gateway's error page renders.
- mitmproxy has no response timeout either: a CEMM that hangs (powered but frozen; its
  kernel still accepts connections) would hold every request for ever. A request sent to
  the CEMM (counted from the ``request`` hook, i.e. once its body went out) must get the
  start of an answer within ``[upstream] response_timeout``; otherwise the client gets the
  gateway's 504 page ("The CEMM is too slow") and the connection is closed, which closes
  the CEMM's side too. A streamed answer that pauses longer than that is cut off (the
  client sees a truncated body, never a clean end). Requests to the gateway's own web app
  are not timed.
- A relayed WebSocket on which the CEMM has sent nothing for ``[upstream]
  websocket_ping_interval`` gets a ping (:mod:`gateway.proxy.ws_ping`); silent for twice
  that long (no message, no pong), its CEMM side is closed, so the client is told 1011
  "upstream connection lost" and its page reconnects.
- The deadlines are checked by one timer every :data:`TICK` seconds (at most), not one
  timer per request, and only while a request or WebSocket is watched (:mod:`addons.ticker`).
- At most one log line a minute says how many requests and sockets a silent CEMM cost.
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
import contextlib
import time
from dataclasses import dataclass
from typing import Any

from mitmproxy import connection, ctx, http
from mitmproxy.proxy import server_hooks

from addons.base import DENIED, close_client, fail_closed, logger
from addons.ticker import Ticker
from gateway.proxy import errorpages, ws_ping
from gateway.proxy.state import ProxyState

# The longest interval between two checks of the deadlines.
TICK = 0.5
# Timeouts are logged at most once per this many seconds, with a count.
LOG_INTERVAL = 60.0

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
            self.state.count_denial("body_too_large")
            close_client(self.flow.client_conn)
        return b""


def _transport(client: connection.Client, conn: connection.Connection) -> tuple[Any, Any]:
    """The connection handler of a client's proxied connection, and the transport of one
    of its sides (either None once closed). Internal API of the pinned mitmproxy version,
    as :func:`addons.base.close_client`."""
    proxyserver = ctx.master.addons.get("proxyserver")
    handler = proxyserver.connections.get(client.id) if proxyserver else None
    io = handler.transports.get(conn) if handler is not None else None
    return handler, io


@dataclass
class _Waiting:
    """A request sent to the CEMM, or an answer streaming from it: since when it waits."""

    flow: http.HTTPFlow
    since: float


class _StreamActivity:
    """``response.stream`` callable that notes when the CEMM last sent part of a body."""

    def __init__(self, waiting: _Waiting) -> None:
        self.waiting = waiting

    def __call__(self, chunk: bytes) -> bytes:
        self.waiting.since = time.monotonic()
        return chunk


@dataclass
class _Socket:
    flow: http.HTTPFlow
    heard: float  # the CEMM's last message
    pinged: float = 0.0  # the gateway's last ping


class Upstream:
    def __init__(self, state: ProxyState) -> None:
        self.state = state
        self._deadlines: dict[str, asyncio.TimerHandle] = {}
        self._waiting: dict[str, _Waiting] = {}
        self._streaming: dict[str, _Waiting] = {}
        self._sockets: dict[str, _Socket] = {}
        self._ticker = Ticker(
            "upstream deadlines",
            busy=self._watching,
            interval=self._interval,
            check=self.expire,
            monotonic=time.monotonic,
        )
        self._timeouts = {"requests": 0, "answers": 0, "websockets": 0}
        self._logged_at = -LOG_INTERVAL

    # -- the deadline ticker ----------------------------------------------------------
    def running(self) -> None:
        ws_ping.install()
        self._ticker.start()

    def done(self) -> None:
        self._ticker.stop()

    def _watching(self) -> bool:
        return bool(
            self._waiting or self._streaming or self._sockets or any(self._timeouts.values())
        )

    def _interval(self) -> float:
        upstream = self.state.upstream
        return min(TICK, upstream.response_timeout / 4, upstream.websocket_ping_interval / 4)

    def expire(self, now: float) -> None:
        """Act on every deadline passed at ``now`` (``time.monotonic()``)."""
        upstream = self.state.upstream
        timeout = upstream.response_timeout
        for flow_id, waiting in list(self._waiting.items()):
            if waiting.flow.client_conn.timestamp_end is not None:  # the client left
                del self._waiting[flow_id]
            elif now - waiting.since >= timeout:
                del self._waiting[flow_id]
                self._answer_timeout(waiting.flow)
        for flow_id, waiting in list(self._streaming.items()):
            if waiting.flow.client_conn.timestamp_end is not None:
                del self._streaming[flow_id]
            elif now - waiting.since >= timeout:
                del self._streaming[flow_id]
                self._timeouts["answers"] += 1
                self.state.count_denial("upstream_timeout")
                close_client(waiting.flow.client_conn)
        interval = upstream.websocket_ping_interval
        for flow_id, socket in list(self._sockets.items()):
            client_id = socket.flow.client_conn.id
            heard = max(socket.heard, ws_ping.pongs.get(client_id, 0.0))
            silent = now - heard
            if silent >= 2 * interval:
                del self._sockets[flow_id]
                ws_ping.pongs.pop(client_id, None)
                self._timeouts["websockets"] += 1
                self._close_server(socket.flow)
            elif silent >= interval and socket.pinged < heard:
                # Once per silence: the next ping only after the CEMM was heard again.
                socket.pinged = now
                self._ping(socket.flow)
        self._log(now)

    def _answer_timeout(self, flow: http.HTTPFlow) -> None:
        """504 to the client, then close its connection (and so the CEMM's side)."""
        if flow.response is not None:  # answered meanwhile
            return
        self._timeouts["requests"] += 1
        self.state.count_denial("upstream_timeout")
        _, io = _transport(flow.client_conn, flow.client_conn)
        if io is not None and io.writer is not None and not io.writer.is_closing():
            io.writer.write((self.state.error_pages or errorpages.PLAIN).raw_response(504))
        flow.kill()
        close_client(flow.client_conn)

    def _ping(self, flow: http.HTTPFlow) -> None:
        _, io = _transport(flow.client_conn, flow.server_conn)
        if io is not None and io.writer is not None and not io.writer.is_closing():
            io.writer.write(ws_ping.ping_frame())

    def _close_server(self, flow: http.HTTPFlow) -> None:
        handler, io = _transport(flow.client_conn, flow.server_conn)
        if io is None:
            close_client(flow.client_conn)
            return
        with contextlib.suppress(KeyError, AssertionError):
            handler.close_connection(flow.server_conn)

    def _log(self, now: float) -> None:
        if not any(self._timeouts.values()) or now - self._logged_at < LOG_INTERVAL:
            return
        self._logged_at = now
        counts = self._timeouts
        logger.warning(
            "the CEMM is not answering in time: %d request(s) answered 504 after %g s, "
            "%d answer(s) cut off mid-body, %d WebSocket(s) closed after %g s of silence%s",
            counts["requests"],
            self.state.upstream.response_timeout,
            counts["answers"],
            counts["websockets"],
            2 * self.state.upstream.websocket_ping_interval,
            " (at most one such line a minute)",
        )
        self._timeouts = dict.fromkeys(counts, 0)

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
        if ok:
            self.state.port_ok(address[1], time.time())
        else:
            self.state.port_failed(address[1], time.time())

    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        self._settle(data, ok=True)

    def server_connect_error(self, data: server_hooks.ServerConnectionHookData) -> None:
        self._settle(data, ok=False)

    @fail_closed
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(DENIED) or flow.response is not None:
            return
        self.state.count_request("admitted")
        if "content-length" in flow.request.headers:
            flow.request.stream = True  # its size was checked by addons.request_limits
        else:
            # A chunked body's size is known only as it arrives: count it on the way.
            flow.request.stream = BodyLimit(
                self.state, flow, self.state.limits.max_request_body_bytes
            )

    def _to_cemm(self, flow: http.HTTPFlow) -> bool:
        upstream = self.state.upstream
        return (flow.request.host, flow.request.port) != (
            upstream.admin_host,
            upstream.admin_port,
        )

    @fail_closed
    def request(self, flow: http.HTTPFlow) -> None:
        # The request (and its body) went out: the CEMM's answer is due from now on.
        if flow.response is None and not flow.metadata.get(DENIED) and self._to_cemm(flow):
            self._waiting[flow.id] = _Waiting(flow, time.monotonic())
            self._ticker.wake()

    @fail_closed
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        waiting = self._waiting.pop(flow.id, None)
        if (
            flow.response is not None
            and not flow.metadata.get(DENIED)
            and not flow.metadata.get(PAGE_FIXUP)
        ):
            if waiting is not None:
                waiting.since = time.monotonic()
                self._streaming[flow.id] = waiting
                flow.response.stream = _StreamActivity(waiting)
            else:
                flow.response.stream = True

    def response(self, flow: http.HTTPFlow) -> None:
        self._waiting.pop(flow.id, None)
        self._streaming.pop(flow.id, None)

    def error(self, flow: http.HTTPFlow) -> None:
        self._waiting.pop(flow.id, None)
        self._streaming.pop(flow.id, None)

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        self._streaming.pop(flow.id, None)
        if self._to_cemm(flow):
            self._sockets[flow.id] = _Socket(flow, time.monotonic())
            self._ticker.wake()

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        # Only the message being relayed is needed; mitmproxy would keep every one.
        assert flow.websocket is not None
        messages = flow.websocket.messages
        socket = self._sockets.get(flow.id)
        if socket is not None and messages and not messages[-1].from_client:
            socket.heard = time.monotonic()
        messages.clear()

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self._sockets.pop(flow.id, None)
        ws_ping.pongs.pop(flow.client_conn.id, None)
