"""Who is connected right now, on which listener, from which address.

The registry lets the app act on live connections: when the allowlist loses an entry, every
connection (WebSockets included) from an address that is no longer allowed is closed. It
also counts open WebSockets for the dashboard and metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mitmproxy import connection, http

from addons.base import close_client, fail_closed, logger
from gateway.policy.allowlist import decide_connection
from gateway.proxy.state import ListenerName, PolicySnapshot, ProxyState


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


class ConnectionRegistry:
    def __init__(self, state: ProxyState) -> None:
        self.state = state
        self.clients: dict[str, LiveClient] = {}

    def add(self, client: connection.Client, listener: ListenerName, peer: str) -> None:
        self.clients[client.id] = LiveClient(client, listener, peer)

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
        self.clients.pop(client.id, None)

    @fail_closed
    def websocket_start(self, flow: http.HTTPFlow) -> None:
        live = self.clients.get(flow.client_conn.id)
        if live is not None:
            live.websockets += 1

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
                self.state.denials["ended_session"] += 1
                logger.info("closed connection from %s: its login ended", live.peer)
        return closed

    def enforce(self, policy: PolicySnapshot) -> int:
        """Close every connection the policy no longer admits; return how many."""
        closed = 0
        for live in list(self.clients.values()):
            allowlist = policy.allowlist_for(live.listener)
            addresses = {live.peer} | live.forwarded_for
            if all(decide_connection(address, allowlist).allowed for address in addresses):
                continue
            if close_client(live.client):
                closed += 1
                self.state.denials["revoked_address"] += 1
                logger.info(
                    "closed connection from %s on the %s port: no longer on the allowlist",
                    live.peer,
                    live.listener,
                )
        return closed
