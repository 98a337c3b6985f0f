"""addons/websocket_messages.py: what a read-only API token's client sends over a WebSocket
never reaches the CEMM; everything else passes."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from mitmproxy import websocket
from mitmproxy.test import tflow
from wsproto.frame_protocol import Opcode

from addons.authentication import ROLE
from addons.connection_registry import ConnectionRegistry
from addons.websocket_messages import DROPPED, VIEWER_DROPPED, ReadOnlyWebSockets
from gateway.policy.credentials import ApiTokenInfo, AuthSnapshot, SessionInfo
from gateway.proxy.state import ProxyState
from tests.support.proxy_state import proxy_state

READ_ONLY = ApiTokenInfo(
    id="ro000001",
    user_id=1,
    user_name="ha",
    role="user",
    name="homeassistant",
    secret_hash="x",
    read_only=True,
    created_at=0.0,
    expires_at=None,
    last_used_at=None,
)
FULL = dataclasses.replace(READ_ONLY, id="rw000002", read_only=False)


def _setup(*, session: str | None = None, token: str | None = None) -> tuple[Any, Any, Any]:
    state: ProxyState = proxy_state()
    state.set_auth(AuthSnapshot(api_tokens={READ_ONLY.id: READ_ONLY, FULL.id: FULL}))
    registry = ConnectionRegistry(state)
    flow = tflow.twebsocketflow()
    registry.add(flow.client_conn, "ws", "203.0.113.5")
    registry.note_credential(flow.client_conn, session=session, token=token)
    return state, ReadOnlyWebSockets(state, registry), flow


def _message(flow: Any, *, from_client: bool, text: bool = True) -> websocket.WebSocketMessage:
    message = websocket.WebSocketMessage(
        Opcode.TEXT if text else Opcode.BINARY, from_client, b'{"cmd":"set"}'
    )
    flow.websocket.messages.append(message)
    return message


@pytest.mark.parametrize("text", [True, False], ids=["text", "binary"])
def test_a_read_only_tokens_messages_to_the_cemm_are_dropped(text: bool) -> None:
    state, addon, flow = _setup(token=READ_ONLY.id)
    message = _message(flow, from_client=True, text=text)
    addon.websocket_message(flow)
    assert message.dropped
    assert state.denials[DROPPED] == 1


def test_the_cemms_live_data_reaches_a_read_only_client() -> None:
    state, addon, flow = _setup(token=READ_ONLY.id)
    message = _message(flow, from_client=False)
    addon.websocket_message(flow)
    assert not message.dropped
    assert state.denials[DROPPED] == 0


@pytest.mark.parametrize(
    ("session", "token"),
    [(None, FULL.id), ("sess1", None), (None, None)],
    ids=["full-token", "session", "trusted-network"],
)
def test_other_credentials_may_send(session: str | None, token: str | None) -> None:
    _, addon, flow = _setup(session=session, token=token)
    message = _message(flow, from_client=True)
    addon.websocket_message(flow)
    assert not message.dropped


def test_a_token_gone_from_the_snapshot_sends_nothing_more() -> None:
    """Revoked or expired a moment ago: the registry closes the socket on the next reload;
    until then nothing it sends is relayed."""
    state, addon, flow = _setup(token=FULL.id)
    state.set_auth(AuthSnapshot(api_tokens={READ_ONLY.id: READ_ONLY}))
    message = _message(flow, from_client=True)
    addon.websocket_message(flow)
    assert message.dropped


def test_the_flag_is_read_at_each_message() -> None:
    """The snapshot is replaced whole; the flag in force when the message arrives decides."""
    state, addon, flow = _setup(token=FULL.id)
    first = _message(flow, from_client=True)
    addon.websocket_message(flow)
    state.set_auth(AuthSnapshot(api_tokens={FULL.id: dataclasses.replace(FULL, read_only=True)}))
    second = _message(flow, from_client=True)
    addon.websocket_message(flow)
    assert (first.dropped, second.dropped) == (False, True)


# A viewer's messages with [roles] viewer_websocket_messages = "drop": the role in force at
# each message decides, read from the current snapshot by the socket's session or token.
def _session(role: str) -> SessionInfo:
    return SessionInfo(
        id="sess1",
        user_id=2,
        user_name="vera",
        role=role,
        csrf_token="c",
        created_at=0.0,
        last_seen_at=0.0,
        expires_at=9e9,
        client_address=None,
        user_agent=None,
    )


def _dropping(state: ProxyState) -> None:
    state.set_access(dataclasses.replace(state.access, viewer_websocket_messages="drop"))


def test_a_session_demoted_to_viewer_sends_nothing_more() -> None:
    state, addon, flow = _setup(session="sess1")
    _dropping(state)
    state.set_auth(AuthSnapshot(sessions={"h": _session("user")}))
    flow.metadata[ROLE] = "user"  # the role the upgrade was admitted with
    first = _message(flow, from_client=True)
    addon.websocket_message(flow)
    state.set_auth(AuthSnapshot(sessions={"h": _session("viewer")}))
    second = _message(flow, from_client=True)
    addon.websocket_message(flow)
    assert (first.dropped, second.dropped) == (False, True)
    assert state.denials[VIEWER_DROPPED] == 1


def test_a_token_demoted_to_viewer_sends_nothing_more() -> None:
    state, addon, flow = _setup(token=FULL.id)
    _dropping(state)
    flow.metadata[ROLE] = "user"
    first = _message(flow, from_client=True)
    addon.websocket_message(flow)
    state.set_auth(AuthSnapshot(api_tokens={FULL.id: dataclasses.replace(FULL, role="viewer")}))
    second = _message(flow, from_client=True)
    addon.websocket_message(flow)
    assert (first.dropped, second.dropped) == (False, True)


def test_a_viewer_promoted_to_user_may_send() -> None:
    state, addon, flow = _setup(session="sess1")
    _dropping(state)
    flow.metadata[ROLE] = "viewer"
    state.set_auth(AuthSnapshot(sessions={"h": _session("user")}))
    message = _message(flow, from_client=True)
    addon.websocket_message(flow)
    assert not message.dropped


def test_a_viewers_messages_pass_when_allowed() -> None:
    state, addon, flow = _setup(session="sess1")
    state.set_auth(AuthSnapshot(sessions={"h": _session("viewer")}))
    message = _message(flow, from_client=True)
    addon.websocket_message(flow)
    assert not message.dropped


def test_a_viewer_session_gone_from_the_snapshot_keeps_its_admitted_role() -> None:
    state, addon, flow = _setup(session="sess1")
    _dropping(state)
    flow.metadata[ROLE] = "viewer"
    state.set_auth(AuthSnapshot())
    message = _message(flow, from_client=True)
    addon.websocket_message(flow)
    assert message.dropped
