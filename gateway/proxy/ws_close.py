"""What a WebSocket peer is told when the other side vanished without a close frame.

When the CEMM loses power or its connection drops, its end of a relayed socket ends
without a close frame. wsproto reports that as 1006 (abnormal closure), a code that must
never be sent, and mitmproxy's WebSocket layer relays the event as it is, so wsproto
quietly sends 1000 (normal closure) instead: the client would be told all is well.

:func:`install` wraps the layer's send (``WebsocketConnection.send2``, an internal of the
pinned mitmproxy version; ``tests/unit/test_ws_close.py`` breaks if it moves) so that a
relayed abnormal closure goes out as what it means:

- to the client: **1011** (the server met an unexpected condition) with the reason
  ``upstream connection lost``. 1014 (bad gateway) would be more precise but is only in
  IANA's registry, not RFC 6455, and wsproto-based clients refuse it;
- to the CEMM, when the client vanished: **1001** (going away).

Every other close, including the codes either side chose itself, passes unchanged. The
flow's own record (``flow.websocket.close_code``) keeps 1006.
"""

from __future__ import annotations

from typing import Any

import wsproto.events
from mitmproxy import connection
from mitmproxy.proxy import commands
from mitmproxy.proxy.layers import websocket
from wsproto.frame_protocol import CloseReason

UPSTREAM_LOST = wsproto.events.CloseConnection(
    code=CloseReason.INTERNAL_ERROR, reason="upstream connection lost"
)
CLIENT_LOST = wsproto.events.CloseConnection(code=CloseReason.GOING_AWAY, reason="client went away")

_original_send2 = websocket.WebsocketConnection.send2


def _send2(self: websocket.WebsocketConnection, event: Any) -> commands.SendData:
    if (
        isinstance(event, wsproto.events.CloseConnection)
        and event.code == CloseReason.ABNORMAL_CLOSURE
    ):
        event = UPSTREAM_LOST if isinstance(self.conn, connection.Client) else CLIENT_LOST
    return _original_send2(self, event)


def install() -> None:
    """Relay abnormal closures with a meaningful code (idempotent)."""
    websocket.WebsocketConnection.send2 = _send2  # type: ignore[method-assign]
