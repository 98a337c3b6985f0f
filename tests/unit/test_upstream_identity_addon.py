"""addons/upstream_identity.py: no target means 503; a foreign MAC at the link layer is cut."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mitmproxy.connection import Server
from mitmproxy.proxy import server_hooks
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import tflow

import addons.upstream_identity as identity
from addons.authentication import TO_APP
from addons.base import DENIED
from gateway.proxy.state import Listener, ProxyState
from tests.support.proxy_state import proxy_state

MAC = "80:1F:12:47:06:B0"
WEB = "reverse:http://cemm.invalid:80@8080"
ADMIN = "reverse:http://127.0.0.1:5000@8443"


def _state(host: str, mac: str = MAC) -> ProxyState:
    return proxy_state(
        {WEB: Listener("web", 8080, WEB), ADMIN: Listener("admin", 8443, ADMIN)},
        host=host,
        mac=mac,
    )


def _flow(spec: str) -> Any:
    flow = tflow.tflow()
    flow.client_conn.proxy_mode = ProxyMode.parse(spec)
    return flow


def test_unconfirmed_cemm_gets_503_with_the_reason() -> None:
    state = _state(host="")
    flow = _flow(WEB)
    identity.UpstreamIdentity(state).requestheaders(flow)
    assert flow.response is not None and flow.response.status_code == 503
    assert flow.metadata[DENIED] == identity.UNCONFIRMED
    assert state.denials[identity.UNCONFIRMED] == 1


@pytest.mark.parametrize(
    ("host", "mac", "spec", "to_app"),
    [
        ("192.168.2.34", MAC, WEB, False),  # confirmed
        ("", "", WEB, False),  # not following a MAC: nothing to enforce here
        ("", MAC, ADMIN, False),  # the admin app
        ("", MAC, WEB, True),  # /.gateway/ on the web port
    ],
)
def test_everything_else_passes(host: str, mac: str, spec: str, to_app: bool) -> None:
    flow = _flow(spec)
    if to_app:
        flow.metadata[TO_APP] = True
    identity.UpstreamIdentity(_state(host, mac)).requestheaders(flow)
    assert flow.response is None and DENIED not in flow.metadata


def _connected(address: tuple[str, int]) -> server_hooks.ServerConnectionHookData:
    flow = _flow(WEB)
    server = Server(address=address)
    server.peername = address
    return server_hooks.ServerConnectionHookData(server=server, client=flow.client_conn)


@pytest.mark.parametrize(
    ("seen", "cut"), [("02:00:00:00:00:01", True), (MAC, False), (None, False)]
)
def test_link_layer_check(monkeypatch: pytest.MonkeyPatch, seen: str | None, cut: bool) -> None:
    cuts: list[Any] = []

    async def lookup(address: str, **kwargs: Any) -> str | None:
        assert address == "192.168.2.34"
        return seen

    monkeypatch.setattr(identity, "link_layer_address", lookup)
    monkeypatch.setattr(identity, "_abort", cuts.append)
    state = _state(host="192.168.2.34")
    asyncio.run(identity.UpstreamIdentity(state).server_connected(_connected(("192.168.2.34", 80))))
    assert bool(cuts) is cut
    assert (state.upstream.host == "") is cut
    assert state.denials[identity.LINK_MISMATCH] == int(cut)


def test_link_layer_check_skips_the_admin_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """The admin app's connection, and any connection without ``[upstream] mac``, is not
    looked up and not cut. The fake records the question instead of raising: the hook
    catches exceptions (and then cuts), so a raising fake would prove nothing."""
    asked: list[str] = []
    cuts: list[Any] = []

    async def lookup(address: str, **kwargs: Any) -> str | None:
        asked.append(address)
        return "02:00:00:00:00:01"  # a foreign MAC: a lookup would lead to a cut

    monkeypatch.setattr(identity, "link_layer_address", lookup)
    monkeypatch.setattr(identity, "_abort", cuts.append)
    state = _state(host="192.168.2.34")
    asyncio.run(identity.UpstreamIdentity(state).server_connected(_connected(("127.0.0.1", 5000))))
    assert (asked, cuts, state.upstream.host) == ([], [], "192.168.2.34")
    state.set_upstream_mac("")
    asyncio.run(identity.UpstreamIdentity(state).server_connected(_connected(("192.168.2.34", 80))))
    assert (asked, cuts, state.upstream.host) == ([], [], "192.168.2.34")
    assert state.denials[identity.LINK_MISMATCH] == 0
    # The control: the same connection to the CEMM with a MAC configured is looked up, cut.
    state.set_upstream_mac(MAC)
    asyncio.run(identity.UpstreamIdentity(state).server_connected(_connected(("192.168.2.34", 80))))
    assert asked == ["192.168.2.34"] and len(cuts) == 1


def test_a_failing_lookup_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    cuts: list[Any] = []

    async def lookup(address: str, **kwargs: Any) -> str | None:
        raise RuntimeError("boom")

    monkeypatch.setattr(identity, "link_layer_address", lookup)
    monkeypatch.setattr(identity, "_abort", cuts.append)
    state = _state(host="192.168.2.34")
    asyncio.run(identity.UpstreamIdentity(state).server_connected(_connected(("192.168.2.34", 80))))
    assert cuts
