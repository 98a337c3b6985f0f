"""The dashboard's "the CEMM is down": one sentence when no port answers, else nothing."""

from __future__ import annotations

from typing import Any

from gateway.admin.dashboard import _cemm, cemm_down
from gateway.proxy.state import PortStatus
from gateway.status import GatewayStatus, StorageStatus
from gateway.upstream.health import PortHealth, UpstreamHealth

NOW = 1_796_547_600.0


def _status(ports: dict[int, PortStatus], health: UpstreamHealth | None, **facts: str) -> Any:
    return GatewayStatus(
        open_connections=0,
        open_websockets=0,
        websocket_sessions=(),
        cemm_ports=ports,
        cemm_facts=facts,
        upstream=health,
        denials={},
        vpn=None,
        storage=StorageStatus(False, False, None, None, {}),
    )


def _health(http_up: bool | None, ws_up: bool | None, **extra: Any) -> UpstreamHealth:
    def port(number: int, up: bool | None) -> PortHealth:
        return PortHealth(number, up=up, failing_since=None if up in (True, None) else NOW - 900)

    return UpstreamHealth(port(80, http_up), port(8090, ws_up), **extra)


def test_nothing_known_or_something_answering_is_not_down() -> None:
    assert cemm_down(_status({}, None), NOW) is None
    assert cemm_down(_status({80: PortStatus(last_ok=NOW)}, _health(None, None)), NOW) is None
    failing = {80: PortStatus(failing_since=NOW - 60)}
    assert cemm_down(_status(failing, _health(False, True)), NOW) is None  # ws answers


def test_no_port_answering_is_one_sentence() -> None:
    failing = {80: PortStatus(failing_since=NOW - 60)}
    status = _status(
        failing,
        _health(False, False, address="192.168.2.34"),
        **{"web port check": "x", "WebSocket port check": "y", "address": "192.168.2.34"},
    )
    down = cemm_down(status, NOW)
    assert down is not None and down.startswith("The CEMM is not answering, since ")
    assert "(15 minutes)" in down  # the monitor saw it first
    cemm = _cemm(status, {80: "web"}, NOW)
    assert cemm is not None and cemm.down == down
    assert cemm.facts == {"address": "192.168.2.34"}  # the per-port lines are gone


def test_following_by_mac_without_an_address_says_the_monitors_sentence() -> None:
    health = _health(None, None, mac="80:1F:12:47:06:B0")
    down = cemm_down(_status({}, health), NOW)
    assert down == health.unavailable_text()
    assert "has not found the CEMM (MAC 80:1F:12:47:06:B0)" in down
