"""Wide allowlist entries need a confirmation: the rule (gateway/policy/wide_networks.py)
and the service that asks it (gateway/services/allowlist.py save_entry)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.policy.allowlist import parse_network
from gateway.policy.wide_networks import is_wide, wide_network_warning
from gateway.services import allowlist
from gateway.store import db

RULES = [
    # (network, wide)
    ("0.0.0.0/0", True),
    ("::/0", True),
    ("0.0.0.0/1", True),
    ("8.0.0.0/8", True),
    ("1.0.0.0/15", True),
    ("172.0.0.0/8", True),  # holds 172.16.0.0/12, but mostly public addresses
    ("2000::/3", True),
    ("1.2.0.0/16", False),  # a /16 itself is not wider than /16
    ("203.0.113.0/24", False),
    ("203.0.113.7", False),
    ("10.0.0.0/8", False),
    ("172.16.0.0/12", False),
    ("100.64.0.0/10", False),
    ("fc00::/7", False),
    ("fe80::/10", False),
    ("2001:db8::/32", False),
]


@pytest.mark.parametrize(("network", "wide"), RULES)
def test_rule(network: str, wide: bool) -> None:
    parsed = parse_network(network)
    assert is_wide(parsed) is wide
    warning = wide_network_warning(parsed)
    assert (warning is not None) is wide
    if warning is not None:
        assert warning.startswith(f"{parsed} is ") and "anyone" in warning


def test_warning_says_what_it_means() -> None:
    assert wide_network_warning(parse_network("0.0.0.0/0")) == (
        "0.0.0.0/0 is every IPv4 address: anyone on the internet who can reach the gateway "
        "could connect to it and try to log in; only a password (and second factor) would "
        "stand between them and the CEMM"
    )
    assert "16,777,216 addresses, wider than /16" in str(
        wide_network_warning(parse_network("8.0.0.0/8"))
    )


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = db.connect(tmp_path / "gateway.db")
    yield connection
    connection.close()


def test_service_refuses_without_confirmation(conn: sqlite3.Connection) -> None:
    with pytest.raises(allowlist.WideNetworkError) as refused:
        allowlist.save_entry(conn, "::/0", actor="anna")
    error = refused.value
    assert error.code == "wide_network" and error.field == "network"
    assert error.extra() == {"network": "::/0"}
    assert error.message.endswith("Confirm to add it anyway (API: confirm_wide; CLI: --yes).")
    assert allowlist.list_entries(conn) == []

    saved = allowlist.save_entry(conn, "::/0", actor="anna", confirm_wide=True)
    assert saved.entry.network == "::/0"
    detail = conn.execute("SELECT detail FROM audit_log WHERE event = 'allowlist.add'")
    assert json.loads(detail.fetchone()[0])["wide_network_confirmed"] is True
    # Changing the label of an entry that is there already asks nothing again.
    assert allowlist.save_entry(conn, "::/0", actor="anna", label="x").previous is not None
    # A narrow network never asks.
    allowlist.save_entry(conn, "203.0.113.0/24", actor="anna")
