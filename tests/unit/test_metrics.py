"""The Prometheus exposition: every family present and parseable, numbers from the state."""

from __future__ import annotations

import math
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import (
    FAMILIES,
    PREFIX,
    WIREGUARD_FAMILIES,
    EventCounts,
    MetricsSnapshot,
    WireguardPeer,
    read_bans_active,
    render,
)
from gateway.store import db
from gateway.upstream.health import PortHealth, UpstreamHealth


def _families(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    found: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        found[family.name] = [(s.name, s.labels, s.value) for s in family.samples]
    return found


def _snapshot(upstream: UpstreamHealth | None) -> MetricsSnapshot:
    return MetricsSnapshot(
        requests={"admitted": 7, "admitted_session": 5},
        denials={"not_allowlisted": 3, "no_credentials": 2},
        events=EventCounts(logins={"password": 4, "oidc": 1}, login_failures=6, bans=2),
        bans_active=1,
        sessions_active=3,
        connections_open=9,
        websockets_open=2,
        upstream=upstream,
    )


def test_every_family_is_present_and_parseable() -> None:
    health = UpstreamHealth(
        http=PortHealth(80, up=True, response_time=0.004),
        ws=PortHealth(8090, up=False),
        mac="80:1F:12:47:06:B0",
        address="192.168.2.34",
        confirmed_at=1.0,
        clock_drift=120.4,
        clock_drift_warning=True,
        address_changes=2,
        checked_at=1736428623.0,
    )
    text = render(_snapshot(health)).decode()
    families = _families(text)
    assert {PREFIX + name for name in FAMILIES} <= set(families)
    assert any("clock_drift" in name for name in families)

    def value(family: str, sample: str | None = None, **labels: str) -> float:
        for name, got, number in families[PREFIX + family]:
            if (sample is None or name == PREFIX + sample) and got == labels:
                return number
        raise AssertionError(f"{family} {labels} not found")

    assert value("requests", "requests_total", kind="admitted") == 7
    assert value("denials", "denials_total", reason="not_allowlisted") == 3
    assert value("logins", "logins_total", method="oidc") == 1
    assert value("login_failures", "login_failures_total") == 6
    assert value("bans", "bans_total") == 2
    assert value("bans_active") == 1
    assert value("sessions_active") == 3
    assert value("connections_open") == 9
    assert value("websockets_open") == 2
    assert value("upstream_up", port="80", service="http") == 1
    assert value("upstream_up", port="8090", service="websocket") == 0
    assert value("upstream_response_seconds", port="80", service="http") == 0.004
    assert value("upstream_identity_confirmed") == 1
    assert value("upstream_address_changes", "upstream_address_changes_total") == 2
    assert value("upstream_clock_drift_seconds") == 120.4
    assert value("upstream_clock_drift_warning") == 1
    assert value("upstream_last_check_timestamp_seconds") == 1736428623.0


def test_unknown_values_are_nan_not_missing() -> None:
    text = render(_snapshot(None)).decode()
    families = _families(text)
    assert {PREFIX + name for name in FAMILIES} <= set(families)
    (drift,) = families[PREFIX + "upstream_clock_drift_seconds"]
    assert math.isnan(drift[2])
    unchecked = UpstreamHealth(http=PortHealth(80), ws=PortHealth(8090), mac="80:1F:12:47:06:B0")
    families = _families(render(_snapshot(unchecked)).decode())
    assert all(math.isnan(v) for _, _, v in families[PREFIX + "upstream_up"])
    (confirmed,) = families[PREFIX + "upstream_identity_confirmed"]
    assert confirmed[2] == 0


def test_active_bans_come_from_the_ban_table(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "data" / "gateway.db")
    try:
        with db.transaction(conn):
            conn.execute(
                "INSERT INTO ban (subject, reason, created_at, until) VALUES (?, ?, ?, ?)",
                ("address:10.0.0.9", "too many failed logins", 1.0, 2e9),
            )
            conn.execute(
                "INSERT INTO ban (subject, reason, created_at, until) VALUES (?, ?, ?, ?)",
                ("user:old", "too many failed logins", 1.0, 5.0),
            )
        assert read_bans_active(conn, now=100.0) == 1
    finally:
        conn.close()


def test_exposition_is_plain_text_without_secrets() -> None:
    text = render(_snapshot(None)).decode()
    assert "cemm_session" not in text and "cgw_" not in text


def test_wireguard_families_only_when_enabled() -> None:
    off = _families(render(_snapshot(None)).decode())
    assert not any(name.startswith(PREFIX + "wireguard") for name in off)
    snapshot = MetricsSnapshot(
        **{
            **_snapshot(None).__dict__,
            "wireguard": [
                WireguardPeer("phone", latest_handshake=1000.0, rx_bytes=5, tx_bytes=7),
                WireguardPeer("tablet", latest_handshake=None, rx_bytes=0, tx_bytes=0),
            ],
            "now": 1030.0,
        }
    )
    on = _families(render(snapshot).decode())
    assert {PREFIX + name for name in WIREGUARD_FAMILIES} <= set(on)
    ages = {
        labels["peer"]: v for _, labels, v in on[PREFIX + "wireguard_peer_handshake_age_seconds"]
    }
    assert ages["phone"] == 30.0 and math.isnan(ages["tablet"])
    received = on[PREFIX + "wireguard_peer_received_bytes"]
    assert (PREFIX + "wireguard_peer_received_bytes_total", {"peer": "phone"}, 5.0) in received
    assert on[PREFIX + "wireguard_peers"][0][2] == 2
