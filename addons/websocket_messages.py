"""A read-only API token may watch the CEMM's live data, never talk to it.

The WebSocket upgrade is a GET, so the access rule (:mod:`gateway.policy.access`) admits it
for a read-only token: live readings are reading. What the CEMM then receives is this
addon's to decide, message by message:

- Every data message (text or binary) from the client on a WebSocket that an API token
  admitted is dropped here - it never reaches the CEMM - unless every token recorded for
  the connection is still in the login snapshot and none of them is read-only. So a
  read-only token's messages are dropped, and so are those of a token that was revoked or
  expired a moment ago (the connection registry closes its socket on the next reload).
- Messages from the CEMM pass unchanged (it pushes live readings unasked).
- Control frames (ping, pong, close) are not messages: mitmproxy answers and relays them
  as usual, so a read-only client can keep its socket alive and close it cleanly.
- A ``viewer``'s messages (session or token) pass when ``[roles] viewer_websocket_messages``
  is ``allow`` (the default: the CEMM's page may need to ask for its live data) and are
  dropped when it is ``drop`` (the viewer then only receives what the CEMM pushes).
- Other sockets admitted by a session cookie, a trusted network or a trusted VPN peer carry
  no token and are not touched.

Which token admitted a socket is what the authentication addon recorded in the connection
registry (``LiveClient.tokens``); its read-only flag is looked up in the current login
snapshot (``ProxyState.auth``). Must run before the upstream addon, which empties the
WebSocket's message list.
"""

from __future__ import annotations

from mitmproxy import http

from addons.authentication import ROLE
from addons.base import fail_closed, logger
from addons.connection_registry import ConnectionRegistry
from gateway.policy.identity import VIEWER
from gateway.proxy.state import ProxyState

DROPPED = "read_only_websocket_message"
VIEWER_DROPPED = "viewer_websocket_message"


class ReadOnlyWebSockets:
    def __init__(self, state: ProxyState, registry: ConnectionRegistry) -> None:
        self.state = state
        self.registry = registry

    def may_send(self, token_ids: set[str]) -> bool:
        """Whether a client admitted by these tokens may send messages to the CEMM."""
        api_tokens = self.state.auth.api_tokens
        return all(
            (info := api_tokens.get(token_id)) is not None and not info.read_only
            for token_id in token_ids
        )

    @fail_closed
    def websocket_message(self, flow: http.HTTPFlow) -> None:
        assert flow.websocket is not None
        message = flow.websocket.messages[-1]
        if not message.from_client:
            return
        if (
            flow.metadata.get(ROLE) == VIEWER
            and self.state.access.viewer_websocket_messages == "drop"
        ):
            message.drop()
            self.state.count_denial(VIEWER_DROPPED)
            return
        live = self.registry.clients.get(flow.client_conn.id)
        if live is None or not live.tokens or self.may_send(live.tokens):
            return
        message.drop()
        self.state.count_denial(DROPPED)
        if not flow.metadata.get(DROPPED):
            flow.metadata[DROPPED] = True
            logger.info(
                "dropping WebSocket messages from %s to the CEMM: its API token is read-only",
                live.peer,
            )
