"""A :class:`ProxyState` for addon unit tests: nothing allowed, a CEMM at a fixed address,
the listeners the test names."""

from __future__ import annotations

from gateway.policy.access import AccessConfig
from gateway.policy.allowlist import CompiledAllowlist
from gateway.policy.names import OwnNames
from gateway.proxy.state import Limits, Listener, PolicySnapshot, ProxyState, UpstreamTarget


def proxy_state(
    listeners: dict[str, Listener] | None = None,
    *,
    host: str = "192.168.2.34",
    mac: str = "",
    page_port: int = 8080,
) -> ProxyState:
    empty = CompiledAllowlist.from_networks([])
    return ProxyState(
        listeners=listeners or {},
        policy=PolicySnapshot(empty, empty, empty),
        upstream=UpstreamTarget(
            host=host, http_port=80, ws_port=8090, connect_timeout=2, admin_port=5000, mac=mac
        ),
        limits=Limits(16384, 0),
        access=AccessConfig(empty, OwnNames(), page_port),
        session_cookie="cemm_session",
    )
