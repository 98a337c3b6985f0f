"""What ``cemm-gateway demo`` prints: the gateway, the admin app, and with
``--listen-host 0.0.0.0`` the LAN address a phone opens (gateway/demo.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.demo import banner, lan_address

PORTS = {"http": 8080, "ws": 8090, "admin": 8443}


@pytest.mark.parametrize(
    ("addresses", "expected"),
    [
        (["127.0.0.1", "::1", "10.1.2.3", "192.168.1.20", "172.17.0.1"], "192.168.1.20"),
        (["127.0.0.1", "172.17.0.1", "10.1.2.3"], "10.1.2.3"),
        (["127.0.0.1", "172.17.0.1"], "172.17.0.1"),
        (["127.0.0.1", "169.254.1.1", "203.0.113.5", "fd00::2"], None),
        (["192.168.1.30", "192.168.1.4"], "192.168.1.4"),
        (["127.0.0.1", "::1", "fe80::1", "not an address"], None),
    ],
)
def test_lan_address(addresses: list[str], expected: str | None) -> None:
    assert lan_address(addresses) == expected


def _banner(listen_host: str, lan: str | None) -> str:
    return banner(
        listen_host=listen_host,
        ports=PORTS,
        simulator_port=5000,
        password="pw",
        config_path=Path("/tmp/demo/gateway.toml"),
        lan=lan,
    )


def test_loopback_demo_prints_gateway_and_admin_app() -> None:
    text = _banner("127.0.0.1", "192.168.1.20")
    assert "Gateway - open this:          http://127.0.0.1:8080/" in text
    assert "Admin app:                    http://127.0.0.1:8443/" in text
    assert "192.168.1.20" not in text  # listening on loopback only: no phone can open it


@pytest.mark.parametrize("listen_host", ["0.0.0.0", "", "::"])
def test_every_address_prints_the_lan_address_for_a_phone(listen_host: str) -> None:
    text = _banner(listen_host, "192.168.1.20")
    assert "Gateway - open this:          http://127.0.0.1:8080/" in text
    assert "On a phone on the same network: http://192.168.1.20:8080/" in text
    assert "Admin app from the phone:       http://192.168.1.20:8443/" in text
    assert "no LAN address" in _banner(listen_host, None)
