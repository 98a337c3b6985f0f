"""The ACME window's connections in the connection registry, without sockets: marked when
admitted, kept by the window's rule across a policy reload, closed when the order ends,
a shorter header deadline, and a total cap."""

from __future__ import annotations

import dataclasses
from typing import Any
from unittest import mock

import pytest
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import tflow

from addons import connection_registry
from addons.acme_challenge import MAX_WINDOW_CONNECTIONS, AcmeChallenge
from addons.connection_guard import ConnectionGuard
from addons.connection_registry import WINDOW_HEADER_TIMEOUT, ConnectionRegistry
from gateway.acme.board import ChallengeBoard
from gateway.policy.allowlist import CompiledAllowlist
from gateway.proxy.state import Listener, PolicySnapshot, ProxyState
from tests.support.proxy_state import proxy_state

WEB = "reverse:http://127.0.0.1:80@8080"
INSIDE, OUTSIDE = "192.168.1.20", "203.0.113.7"


def _state() -> ProxyState:
    state = proxy_state({WEB: Listener("web", 8080, WEB)})
    state.set_policy(
        PolicySnapshot(
            allowlist=CompiledAllowlist.from_networks([f"{INSIDE}/32"]),
            admin_allowlist=CompiledAllowlist.from_networks([f"{INSIDE}/32"]),
            trusted_proxies=CompiledAllowlist.from_networks([]),
        )
    )
    state.set_limits(dataclasses.replace(state.limits, header_timeout=30.0, idle_timeout=60.0))
    return state


def _client(address: str) -> Any:
    client = tflow.tclient_conn()
    client.peername = (address, 40000)
    client.proxy_mode = ProxyMode.parse(WEB)
    client.error = None
    return client


@pytest.fixture
def parts(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[ProxyState, ConnectionRegistry, ConnectionGuard, ChallengeBoard, list[str]]:
    state = _state()
    registry = ConnectionRegistry(state)
    guard = ConnectionGuard(state, registry)
    board = ChallengeBoard()
    window = AcmeChallenge(state, board)
    guard.challenge_window = registry.challenge_window = window
    closed: list[str] = []
    monkeypatch.setattr(connection_registry, "close_client", lambda c: closed.append(c.id) or True)
    return state, registry, guard, board, closed


def test_window_connections_follow_the_window_not_the_allowlist(parts: Any) -> None:
    state, registry, guard, board, closed = parts
    board.add("token", "token.key")
    inside, outside = _client(INSIDE), _client(OUTSIDE)
    guard.client_connected(inside)
    guard.client_connected(outside)
    assert inside.error is None and outside.error is None
    assert registry.clients[outside.id].window
    assert not registry.clients[inside.id].window
    # A reload while the order is pending keeps it (the allowlist still refuses it).
    assert registry.enforce(state.policy) == 0
    assert registry.enforce_window() == 0
    assert closed == []
    # The order ends: the next check closes it, and only it.
    board.clear()
    assert registry.enforce_window() == 1
    assert closed == [outside.id]
    assert state.denials["acme_window"] == 1
    closed.clear()
    assert registry.enforce(state.policy) == 1
    assert closed == [outside.id]


def test_window_connections_have_a_shorter_header_deadline(parts: Any) -> None:
    _, registry, guard, board, closed = parts
    board.add("token", "token.key")
    with mock.patch.object(connection_registry.time, "monotonic", return_value=1000.0):
        inside, outside = _client(INSIDE), _client(OUTSIDE)
        guard.client_connected(inside)
        guard.client_connected(outside)
    assert registry.expire(1000.0 + WINDOW_HEADER_TIMEOUT) == 1
    assert closed == [outside.id]
    assert registry.expire(1030.0) == 1  # the configured header_timeout
    assert closed[-1] == inside.id


def test_window_connections_are_capped_in_total(parts: Any) -> None:
    state, registry, guard, board, _ = parts
    board.add("token", "token.key")
    clients = [_client(f"203.0.113.{n % 200}") for n in range(MAX_WINDOW_CONNECTIONS + 5)]
    for client in clients:
        guard.client_connected(client)
    refused = [c for c in clients if c.error]
    assert len(refused) == 5
    assert all(c.error.startswith("refused: ") for c in refused)
    # One leaves: the next may come in.
    guard_window = registry.challenge_window
    assert isinstance(guard_window, AcmeChallenge)
    guard_window.client_disconnected(clients[0])
    registry.client_disconnected(clients[0])
    late = _client("198.51.100.1")
    guard.client_connected(late)
    assert late.error is None
    # An allowlisted address never counts against the window.
    inside = _client(INSIDE)
    guard.client_connected(inside)
    assert inside.error is None
    assert sum(state.denials.values()) == 5
