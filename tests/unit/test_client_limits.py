"""Client limits without sockets: the per-address connection cap (admin networks and
trusted proxies exempt), the header and idle deadlines, and the accept guard's log."""

from __future__ import annotations

import dataclasses
import errno
import logging
from typing import Any
from unittest import mock

import pytest
from mitmproxy import websocket
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import tflow

from addons import connection_registry
from addons.connection_guard import ConnectionGuard
from addons.connection_registry import ConnectionRegistry
from gateway.policy.allowlist import CompiledAllowlist
from gateway.proxy.state import Listener, PolicySnapshot, ProxyState
from gateway.system.limits import AcceptGuard
from tests.support.proxy_state import proxy_state

WEB = "reverse:http://127.0.0.1:80@8080"


def _state(cap: int = 3) -> ProxyState:
    state = proxy_state({WEB: Listener("web", 8080, WEB)})
    state.set_policy(
        PolicySnapshot(
            allowlist=CompiledAllowlist.from_networks(["0.0.0.0/0"]),
            admin_allowlist=CompiledAllowlist.from_networks(["192.168.0.0/16"]),
            trusted_proxies=CompiledAllowlist.from_networks(["10.0.0.2/32"]),
        )
    )
    state.set_limits(
        dataclasses.replace(
            state.limits, max_connections_per_client=cap, header_timeout=10.0, idle_timeout=60.0
        )
    )
    return state


def _client(address: str) -> Any:
    client = tflow.tclient_conn()
    client.peername = (address, 40000)
    client.proxy_mode = ProxyMode.parse(WEB)
    client.error = None
    return client


@pytest.mark.parametrize(
    ("address", "capped"),
    [
        ("203.0.113.7", True),  # an allowed address
        ("192.168.1.20", False),  # an admin network
        ("10.0.0.2", False),  # a trusted proxy: its connections carry many clients
    ],
)
def test_the_connection_cap_per_address(address: str, capped: bool) -> None:
    state = _state(cap=3)
    registry = ConnectionRegistry(state)
    guard = ConnectionGuard(state, registry)
    clients = [_client(address) for _ in range(5)]
    for client in clients:
        guard.client_connected(client)
    refused = [c for c in clients if c.error]
    assert len(refused) == (2 if capped else 0)
    if capped:
        assert refused[0].error == "refused: too_many_connections"
        assert state.denials["too_many_connections"] == 2
        # One leaves: the next may connect.
        registry.client_disconnected(clients[0])
        late = _client(address)
        guard.client_connected(late)
        assert late.error is None
    # Another address is not affected.
    other = _client("198.51.100.1")
    guard.client_connected(other)
    assert other.error is None


def test_a_cap_of_zero_is_no_cap() -> None:
    state = _state(cap=0)
    guard = ConnectionGuard(state, ConnectionRegistry(state))
    clients = [_client("203.0.113.7") for _ in range(50)]
    for client in clients:
        guard.client_connected(client)
    assert not any(c.error for c in clients)


def test_header_and_idle_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    state = _state()
    registry = ConnectionRegistry(state)
    closed: list[str] = []
    monkeypatch.setattr(connection_registry, "close_client", lambda c: closed.append(c.id) or True)
    with mock.patch.object(connection_registry.time, "monotonic", return_value=1000.0):
        silent, busy, kept, socket = (_client("203.0.113.7") for _ in range(4))
        for client in (silent, busy, kept, socket):
            registry.add(client, "web", "203.0.113.7")
        flows = {}
        for client in (busy, kept, socket):
            flows[client.id] = flow = tflow.tflow(client_conn=client)
            registry.requestheaders(flow)
        registry.response(flows[kept.id])  # answered at 1000: idle from now on
        ws_flow = flows[socket.id]
        ws_flow.websocket = websocket.WebSocketData()
        registry.response(ws_flow)  # the 101
        registry.websocket_start(ws_flow)
    assert registry.expire(1009.9) == 0
    assert registry.expire(1010.0) == 1  # header_timeout: the silent one
    assert closed == [silent.id]
    assert state.denials["header_timeout"] == 1
    assert registry.expire(1059.9) == 0
    assert registry.expire(1060.0) == 1  # idle_timeout: the kept-alive one
    assert closed[-1] == kept.id
    assert state.denials["idle_timeout"] == 1
    # A request in flight and an open WebSocket are never idle.
    assert registry.expire(10_000.0) == 0


def test_zero_disables_the_deadlines() -> None:
    state = _state()
    state.set_limits(dataclasses.replace(state.limits, header_timeout=0))
    registry = ConnectionRegistry(state)
    registry.add(_client("203.0.113.7"), "web", "203.0.113.7")
    assert registry.expire(1e12) == 0


class _FakeLoop:
    """Just what the accept guard calls."""

    def __init__(self) -> None:
        self.removed: list[int] = []
        self.later: list[float] = []

    def _accept_connection2(self, *args: Any) -> None:  # pragma: no cover - never reached
        raise AssertionError

    def _remove_reader(self, fd: int) -> None:
        self.removed.append(fd)

    def call_later(self, delay: float, *args: Any) -> None:
        self.later.append(delay)


class _FullSocket:
    def __init__(self) -> None:
        self.accepts = 0

    def accept(self) -> Any:
        self.accepts += 1
        raise OSError(errno.EMFILE, "Too many open files")

    def fileno(self) -> int:
        return 7


def test_at_the_descriptor_limit_accepting_pauses_and_one_line_a_minute_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="cemm_gateway")
    loop = _FakeLoop()
    guard = AcceptGuard(loop, pause=1.0, log_interval=60.0, limit=lambda: 150)  # type: ignore[arg-type]
    sock = _FullSocket()
    now = [0.0]
    with mock.patch("gateway.system.limits.time.monotonic", lambda: now[0]):
        for second in range(180):  # three minutes at the limit, a retry every second
            now[0] = float(second)
            guard._accept_connection(None, sock, None, None, 100)  # type: ignore[arg-type]
    # One accept() per pass, not ``backlog``; one retry scheduled per pass.
    assert sock.accepts == 180
    assert loop.removed == [7] * 180
    assert loop.later == [1.0] * 180
    lines = [r.getMessage() for r in caplog.records if "out of file descriptors" in r.message]
    assert len(lines) == 3, lines
    assert "open-file limit 150" in lines[0] and "1 pause so far" in lines[0]
    assert "60 pauses in the last 60 s" in lines[1]
