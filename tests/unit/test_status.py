"""gateway/status.py: the typed status, and the JSON ``/healthz`` details, key for key."""

from __future__ import annotations

from gateway.status import GatewayStatus, StorageStatus, gather
from gateway.upstream.health import PortHealth, UpstreamHealth
from gateway.wireguard.manager import PeerStatus, WireguardReport
from tests.support.proxy_state import proxy_state

STORAGE = StorageStatus(
    disk_full=False, read_only=False, free_bytes=1234, message=None, failing_writes={}
)


def _status(**parts: object) -> GatewayStatus:
    state = proxy_state()
    state.port_ok(80, 50.0)
    state.count_denial("not_allowlisted")
    health = UpstreamHealth(http=PortHealth(80), ws=PortHealth(8090))
    health.http.record(ok=True, now=50.0, response_time=0.01, error=None)
    state.set_cemm(health)
    values: dict[str, object] = {
        "open_connections": 3,
        "open_websockets": 1,
        "websocket_sessions": {"s2", "s1"},
        "cemm_facts": {"address": "192.168.2.34"},
        "vpn": None,
        "storage": STORAGE,
        **parts,
    }
    return gather(state, **values)  # type: ignore[arg-type]


def test_the_json_keeps_its_keys_and_shapes() -> None:
    data = _status().to_dict()
    assert list(data) == [
        "open_connections",
        "open_websockets",
        "websocket_sessions",
        "cemm",
        "upstream",
        "denials",
        "vpn",
        "storage",
    ]
    assert data["websocket_sessions"] == ["s1", "s2"]
    assert data["cemm"] == {
        "80": {"last_ok": 50.0, "failing_since": None},
        "address": "192.168.2.34",
    }
    assert data["upstream"]["ports"]["http"]["up"] is True
    assert data["denials"] == {"not_allowlisted": 1}
    assert data["vpn"] is None
    assert data["storage"] == {
        "disk_full": False,
        "read_only": False,
        "free_bytes": 1234,
        "message": None,
        "failing_writes": {},
    }


def test_port_states_for_the_short_health_answer() -> None:
    status = _status()
    assert (status.port_state("http"), status.port_state("ws")) == ("up", "unknown")


def test_the_status_is_a_copy_of_the_monitors_report() -> None:
    state = proxy_state()
    health = UpstreamHealth(http=PortHealth(80), ws=PortHealth(8090))
    state.set_cemm(health)
    status = gather(
        state,
        open_connections=0,
        open_websockets=0,
        websocket_sessions=set(),
        cemm_facts={},
        vpn=None,
        storage=STORAGE,
    )
    health.http.record(ok=False, now=60.0, response_time=None, error="refused")
    assert status.port_state("http") == "unknown"


def test_vpn_peers_carry_their_handshake_age() -> None:
    peer = PeerStatus("anna", "10.13.13.2", True, False, 90.0, 5, 6)
    report = WireguardReport("wg0", "kernel", "vpn.example.net:51820", 0, (peer,), at=100.0)
    vpn = _status(vpn=report).to_dict()["vpn"]
    assert vpn == {
        "interface": "wg0",
        "kind": "kernel",
        "endpoint": "vpn.example.net:51820",
        "restarts": 0,
        "peers": [
            {
                "name": "anna",
                "address": "10.13.13.2",
                "enabled": True,
                "trusted": False,
                "latest_handshake": 90.0,
                "rx_bytes": 5,
                "tx_bytes": 6,
                "handshake_age": 10.0,
            }
        ],
    }
