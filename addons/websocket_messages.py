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
  dropped when it is ``drop`` (the viewer then only receives what the CEMM pushes). The
  role is read at each message from the current login snapshot, by the session and token
  ids the connection registry holds for the socket: a user demoted to viewer after the
  upgrade is a viewer from the next message on. A session no longer in the snapshot keeps
  the role it was admitted with (the registry closes its socket on the next reload).
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
from addons.connection_registry import ConnectionRegistry, LiveClient
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

    def is_viewer(self, live: LiveClient | None, admitted_role: object) -> bool:
        """Whether the socket's credentials hold the viewer role now (module doc)."""
        if live is None:
            return admitted_role == VIEWER
        auth = self.state.auth
        found = {info.id: info.role for info in auth.sessions.values() if info.id in live.sessions}
        roles = {found.get(session_id, admitted_role) for session_id in live.sessions}
        roles |= {info.role for token_id in live.tokens if (info := auth.api_tokens.get(token_id))}
        if not live.sessions and not live.tokens:
            roles.add(admitted_role)
        return VIEWER in roles

    @fail_closed
    def websocket_message(self, flow: http.HTTPFlow) -> None:
        assert flow.websocket is not None
        message = flow.websocket.messages[-1]
        if not message.from_client:
            return
        live = self.registry.clients.get(flow.client_conn.id)
        if self.state.access.viewer_websocket_messages == "drop" and self.is_viewer(
            live, flow.metadata.get(ROLE)
        ):
            message.drop()
            self.state.count_denial(VIEWER_DROPPED)
            return
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
