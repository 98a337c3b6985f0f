"""Who is connected right now, on which listener, from which address.

The registry lets the app act on live connections: when the allowlist loses an entry, every
connection (WebSockets included) from an address that is no longer allowed is closed. It
also counts open WebSockets for the dashboard and metrics, and open connections per
address (the connection guard's per-client cap).

It also closes connections that hold a descriptor without using it (mitmproxy closes only
connections idle for ``tcp_timeout``, 10 minutes):

- a new connection that has not sent a complete request head (TLS handshake included)
  within ``[limits] header_timeout``: a client that connects and sends nothing, or
  trickles a head that never ends;
- a kept-alive connection that has not sent its next request head within ``[limits]
  idle_timeout`` of the end of the last answer.

Connections admitted only through the ACME HTTP-01 window (``LiveClient.window``; see
:mod:`gateway.policy.acme_challenge`) are re-checked against the window's own rule, not the
allowlist: a policy reload keeps them while the window admits them, and the timer closes
them as soon as it no longer does (the order ended). Their header deadline is at most
:data:`WINDOW_HEADER_TIMEOUT`.

A connection with a request in flight or an open WebSocket is never idle here (the
upstream deadlines of ``addons/upstream.py`` cover a CEMM that stops answering). The
deadlines are checked by one timer every :data:`TICK` seconds at most, while any connection
is open (:mod:`addons.ticker`: an idle gateway is not woken); the closes are
counted (``header_timeout``, ``idle_timeout`` in the denial counters), not logged one by
one. Any other timer that has work only while a connection is open (the session sweeper)
is made by :meth:`ConnectionRegistry.while_open`, and woken by the same new connection.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from mitmproxy import connection, http

from addons.base import close_client, fail_closed, logger
from addons.ticker import Ticker
from gateway.policy.allowlist import decide_connection
from gateway.proxy.state import ListenerName, PolicySnapshot, ProxyState

# The longest interval between two checks of the idle deadlines.
TICK = 0.5
# The longest a connection admitted through the ACME window may take to send its head.
WINDOW_HEADER_TIMEOUT = 5.0


class ChallengeWindow(Protocol):
    """The ACME HTTP-01 window (addons/acme_challenge.py), as the registry asks it."""

    def came_through(self, client: connection.Client) -> bool:
        """Was this connection admitted only through the window?"""
        ...

    def keeps(self, listener: str) -> bool:
        """Does the window admit an outside connection to ``listener`` now?"""
        ...


@dataclass
class LiveClient:
    client: connection.Client
    listener: ListenerName
    peer: str
    # The client address a trusted proxy reported for the latest request, if any.
    forwarded_for: set[str] = field(default_factory=set)
    websockets: int = 0
    # Credentials that admitted a WebSocket on this connection: ending one closes it.
    sessions: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)
    # When it is closed unless it sends a request head (monotonic); None while busy.
    deadline: float | None = None
    # Which limit the deadline is: "header_timeout" or "idle_timeout".
    waiting_for: str = "header_timeout"
    requests: int = 0  # requests in flight
    # Admitted only through the ACME window: the window's rule, not the allowlist, keeps it.
    window: bool = False


class ConnectionRegistry:
    def __init__(self, state: ProxyState) -> None:
        self.state = state
        self.clients: dict[str, LiveClient] = {}
        self.per_address: Counter[str] = Counter()
        self._tickers: list[Ticker] = []
        self._ticker = self.while_open(
            "client deadlines", interval=self._interval, check=self._check
        )
        # Set with ACME HTTP-01; None otherwise (then no connection is a window connection).
        self.challenge_window: ChallengeWindow | None = None

    def add(self, client: connection.Client, listener: ListenerName, peer: str) -> None:
        window = self.challenge_window is not None and self.challenge_window.came_through(client)
        live = LiveClient(client, listener, peer, window=window)
        timeout = self.state.limits.header_timeout
        if window:
            timeout = min(timeout, WINDOW_HEADER_TIMEOUT) if timeout else WINDOW_HEADER_TIMEOUT
        live.deadline = time.monotonic() + timeout if timeout else None
        self.clients[client.id] = live
        self.per_address[peer] += 1
        for ticker in self._tickers:
            ticker.wake()

    def connections_from(self, peer: str) -> int:
        return self.per_address.get(peer, 0)

    # -- idle deadlines ---------------------------------------------------------------
    def while_open(
        self, name: str, *, interval: Callable[[], float], check: Callable[[float], object]
    ) -> Ticker:
        """A timer that runs ``check(now)`` every ``interval()`` seconds while any connection
        is open, and sleeps while none is (a new connection wakes it)."""
        ticker = Ticker(
            name,
            busy=lambda: bool(self.clients),
            interval=interval,
            check=check,
            monotonic=time.monotonic,
        )
        self._tickers.append(ticker)
        return ticker

    def running(self) -> None:
        self._ticker.start()

    def done(self) -> None:
        self._ticker.stop()

    def _interval(self) -> float:
        limits = self.state.limits
        shortest = min((t for t in (limits.header_timeout, limits.idle_timeout) if t), default=0)
        return min(TICK, shortest / 4) if shortest else TICK

    def _check(self, now: float) -> None:
        self.expire(now)
        self.enforce_window()

    def expire(self, now: float) -> int:
        """Close the connections whose deadline passed at ``now``; return how many."""
        closed = 0
        for live in list(self.clients.values()):
            if live.deadline is not None and now >= live.deadline:
                live.deadline = None
                if close_client(live.client):
                    closed += 1
                    self.state.count_denial(live.waiting_for)
        return closed

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        live = self.clients.get(flow.client_conn.id)
        if live is not None:
            live.requests += 1
            live.deadline = None

    def _answered(self, flow: http.HTTPFlow) -> None:
        live = self.clients.get(flow.client_conn.id)
        if live is None:
            return
        live.requests = max(0, live.requests - 1)
        timeout = self.state.limits.idle_timeout
        if not live.requests and not live.websockets and timeout:
            live.waiting_for = "idle_timeout"
            live.deadline = time.monotonic() + timeout

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None:
            self._answered(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None:
            self._answered(flow)

    def note_forwarded(self, client: connection.Client, address: str) -> None:
        live = self.clients.get(client.id)
        if live is not None:
            live.forwarded_for.add(address)

    def note_credential(
        self, client: connection.Client, *, session: str | None, token: str | None
    ) -> None:
        live = self.clients.get(client.id)
        if live is None:
            return
        if session is not None:
            live.sessions.add(session)
        if token is not None:
            live.tokens.add(token)

    def websocket_sessions(self) -> set[str]:
        return {s for live in self.clients.values() if live.websockets for s in live.sessions}

    @property
    def open_websockets(self) -> int:
        return sum(live.websockets for live in self.clients.values())

    def client_disconnected(self, client: connection.Client) -> None:
        live = self.clients.pop(client.id, None)
        if live is not None:
            self.per_address[live.peer] -= 1
            if self.per_address[live.peer] <= 0:
                del self.per_address[live.peer]

    @fail_closed
    def websocket_start(self, flow: http.HTTPFlow) -> None:
        live = self.clients.get(flow.client_conn.id)
        if live is not None:
            live.websockets += 1
            live.requests = max(0, live.requests - 1)
            live.deadline = None

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        live = self.clients.get(flow.client_conn.id)
        if live is not None and live.websockets > 0:
            live.websockets -= 1

    def enforce_credentials(
        self, session_ok: Callable[[str], bool], token_ok: Callable[[str], bool]
    ) -> int:
        """Close every connection whose WebSocket was admitted by an ended login or token."""
        closed = 0
        for live in list(self.clients.values()):
            if all(map(session_ok, live.sessions)) and all(map(token_ok, live.tokens)):
                continue
            if close_client(live.client):
                closed += 1
                self.state.count_denial("ended_session")
                logger.info("closed connection from %s: its login ended", live.peer)
        return closed

    def _window_keeps(self, live: LiveClient) -> bool:
        return (
            live.window
            and self.challenge_window is not None
            and self.challenge_window.keeps(live.listener)
        )

    def enforce_window(self) -> int:
        """Close every window connection the window no longer admits; return how many."""
        closed = 0
        for live in list(self.clients.values()):
            if live.window and not self._window_keeps(live) and close_client(live.client):
                closed += 1
                self.state.count_denial("acme_window")
        return closed

    def enforce(self, policy: PolicySnapshot) -> int:
        """Close every connection the policy no longer admits; return how many.

        A window connection is admitted by the window's rule (the one the connection guard
        asked), so an allowlist that still refuses its address does not close it."""
        closed = 0
        for live in list(self.clients.values()):
            allowlist = policy.allowlist_for(live.listener)
            addresses = {live.peer} | live.forwarded_for
            if all(decide_connection(address, allowlist).allowed for address in addresses):
                continue
            if self._window_keeps(live):
                continue
            if close_client(live.client):
                closed += 1
                self.state.count_denial("acme_window" if live.window else "revoked_address")
                logger.info(
                    "closed connection from %s on the %s port: no longer on the allowlist",
                    live.peer,
                    live.listener,
                )
        return closed
