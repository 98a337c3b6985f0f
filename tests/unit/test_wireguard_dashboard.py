"""The dashboard's VPN panel: each peer's last handshake and its transfer, from the
WireGuard manager's report as the gateway's status carries it (``status().vpn``)."""

from __future__ import annotations

import re
import time
from typing import Any

from gateway.admin.dashboard import Dashboard, _vpn
from gateway.admin.pages import templates
from gateway.wireguard.manager import PeerStatus, WireguardReport


def _peer(name: str, **fields: Any) -> PeerStatus:
    """One peer as WireguardManager.report() lists it."""
    values: dict[str, Any] = {
        "address": "10.13.13.2",
        "enabled": True,
        "trusted": False,
        "latest_handshake": None,
        "rx_bytes": 0,
        "tx_bytes": 0,
        **fields,
    }
    return PeerStatus(name=name, **values)


def _vpn_items(peers: list[PeerStatus]) -> dict[str, str]:
    """The VPN panel's list items by peer name, as text without tags."""
    dashboard = Dashboard(
        generated_at=time.time(),
        open_connections=0,
        open_websockets=0,
        sessions=[],
        denials=[],
        recent_login_failures=[],
        bans=[],
        cemm=None,
        vpn=_vpn(
            WireguardReport(
                interface="wg0",
                kind="kernel",
                endpoint="vpn.example.net:51820",
                restarts=0,
                peers=tuple(peers),
                at=time.time(),
            )
        ),
    )
    page = templates.env.get_template("dashboard.html").render(
        dashboard=dashboard, caller=None, current_path="/", now=time.time(), csrf_token=None
    )
    panel = page.split('data-panel="vpn"', 1)[1].split("</section>", 1)[0]
    items = re.findall(r"<li>(.*?)</li>", panel, re.S)
    texts = [" ".join(re.sub(r"<[^>]+>", " ", item).split()) for item in items]
    return {text.split(" ", 1)[0]: text for text in texts}


def test_vpn_panel_shows_each_peers_transfer() -> None:
    items = _vpn_items(
        [
            _peer(
                "anna",
                latest_handshake=time.time() - 120,
                rx_bytes=1_234_567,
                tx_bytes=89_012_345,
            ),
            _peer("bob", address="10.13.13.3"),
        ]
    )
    assert items["anna"] == (
        "anna · 10.13.13.2 · last handshake 2 minutes ago · 1.2 MB received, 89.0 MB sent"
    )
    # A peer that never connected has no transfer to show.
    assert items["bob"] == "bob · 10.13.13.3 · never connected"


def test_vpn_panel_without_known_transfer_shows_the_handshake_only() -> None:
    items = _vpn_items(
        [
            _peer("anna", latest_handshake=time.time() - 30, rx_bytes=None, tx_bytes=None),
            _peer("carl", rx_bytes=92, tx_bytes=148),  # handshakes sent, none answered
        ]
    )
    assert items["anna"] == "anna · 10.13.13.2 · last handshake just now"
    assert (
        items["carl"] == "carl · 10.13.13.2 · never connected · 92 Bytes received, 148 Bytes sent"
    )
