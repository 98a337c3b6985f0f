"""A relayed WebSocket whose other side vanished is closed with a code that says so."""

from __future__ import annotations

import pytest
import wsproto
import wsproto.events
from mitmproxy import connection
from mitmproxy.proxy.layers import websocket
from wsproto.frame_protocol import CloseReason

from gateway.proxy import ws_close


@pytest.fixture(autouse=True)
def installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(websocket.WebsocketConnection, "send2", ws_close._original_send2)
    ws_close.install()
    ws_close.install()  # idempotent


def _towards_client() -> websocket.WebsocketConnection:
    client = connection.Client(
        peername=("192.0.2.7", 50000), sockname=("192.0.2.1", 8090), timestamp_start=0
    )
    return websocket.WebsocketConnection(wsproto.ConnectionType.SERVER, conn=client)


def _towards_cemm() -> websocket.WebsocketConnection:
    server = connection.Server(address=("192.0.2.34", 8090))
    return websocket.WebsocketConnection(wsproto.ConnectionType.CLIENT, conn=server)


def _close_frame(
    side: websocket.WebsocketConnection, event: wsproto.events.Event
) -> tuple[int, str]:
    """Send ``event`` and read the close frame back as the peer would."""
    data = side.send2(event).data
    peer = wsproto.Connection(
        wsproto.ConnectionType.CLIENT
        if side.conn.__class__ is connection.Client
        else wsproto.ConnectionType.SERVER
    )
    peer.receive_data(data)
    (closed,) = list(peer.events())
    assert isinstance(closed, wsproto.events.CloseConnection)
    return int(closed.code), closed.reason


def test_a_vanished_cemm_is_reported_to_the_client_as_an_error() -> None:
    lost = wsproto.events.CloseConnection(code=CloseReason.ABNORMAL_CLOSURE)
    assert _close_frame(_towards_client(), lost) == (1011, "upstream connection lost")


def test_a_vanished_client_is_reported_to_the_cemm_as_going_away() -> None:
    lost = wsproto.events.CloseConnection(code=CloseReason.ABNORMAL_CLOSURE)
    assert _close_frame(_towards_cemm(), lost) == (1001, "client went away")


@pytest.mark.parametrize("code", [1000, 1001, 1008, 1011, 4000])
def test_codes_a_side_chose_pass_unchanged(code: int) -> None:
    chosen = wsproto.events.CloseConnection(code=code, reason="as sent")
    assert _close_frame(_towards_client(), chosen) == (code, "as sent")
    assert _close_frame(_towards_cemm(), chosen) == (code, "as sent")


def test_without_the_wrapper_mitmproxy_would_say_normal_closure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the wrapper exists for, pinned: if a mitmproxy upgrade relays 1006 differently,
    # this test says so and the wrapper can go.
    monkeypatch.setattr(websocket.WebsocketConnection, "send2", ws_close._original_send2)
    lost = wsproto.events.CloseConnection(code=CloseReason.ABNORMAL_CLOSURE)
    assert _close_frame(_towards_client(), lost) == (1000, "")
