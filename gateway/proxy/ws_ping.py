"""Keep-alive pings the gateway sends to the CEMM on a relayed WebSocket, and their pongs.

mitmproxy's WebSocket layer relays pings and pongs between the two sides but never sends
one of its own, so a CEMM that hangs (powered, but frozen) leaves a relayed socket open
and silent for ever. :func:`send_ping` writes a ping frame straight to the CEMM's side of
the connection (a complete frame in one write, between two of mitmproxy's frame writes:
control frames may be interleaved anywhere between frames, RFC 6455 5.4). The CEMM's
pong comes back through mitmproxy's layer, which would relay it to the browser;
:func:`install` wraps the layer's send (``WebsocketConnection.send2``, an internal of the
pinned mitmproxy version, as :mod:`gateway.proxy.ws_close` does) so that a pong carrying
the gateway's payload is recorded in :data:`pongs` and not relayed.
"""

from __future__ import annotations

import os
import time
from typing import Any

import wsproto.events
from mitmproxy import connection
from mitmproxy.proxy import commands
from mitmproxy.proxy.layers import websocket

PAYLOAD = b"cemm-gateway keep-alive"

# Client connection id -> when the CEMM last answered one of the gateway's pings.
pongs: dict[str, float] = {}


def ping_frame(payload: bytes = PAYLOAD) -> bytes:
    """A masked ping frame (a client's frames towards a server must be masked)."""
    assert len(payload) <= 125
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([0x89, 0x80 | len(payload)]) + mask + masked


def _wrap(original: Any) -> Any:
    def send2(self: websocket.WebsocketConnection, event: Any) -> commands.SendData:
        if (
            isinstance(event, wsproto.events.Pong)
            and bytes(event.payload) == PAYLOAD
            and isinstance(self.conn, connection.Client)
        ):
            # The CEMM's answer to our ping, on its way to the browser: ours, not theirs.
            pongs[self.conn.id] = time.monotonic()
            return commands.SendData(self.conn, b"")
        result: commands.SendData = original(self, event)
        return result

    send2.cemm_gateway_pong = True  # type: ignore[attr-defined]
    return send2


def install() -> None:
    """Record and swallow the CEMM's pongs to the gateway's pings (idempotent; call after
    :func:`gateway.proxy.ws_close.install`, whose wrapper this one wraps)."""
    current = websocket.WebsocketConnection.send2
    if not getattr(current, "cemm_gateway_pong", False):
        websocket.WebsocketConnection.send2 = _wrap(current)  # type: ignore[method-assign]
