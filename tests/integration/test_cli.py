"""The CLI as a user runs it: exit codes, messages, and that bad input writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.gateway import cli


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    return path


def test_allow_add_list_remove(config: Path) -> None:
    added = cli(
        "allow", "add", "203.0.113.0/24", "--label", "office", "--expires", "7d", config=config
    )
    assert added.returncode == 0, added.stderr
    assert "allowed 203.0.113.0/24, expires" in added.stdout
    listed = cli("allow", "list", "--json", config=config)
    entries = json.loads(listed.stdout)["entries"]
    assert [(e["network"], e["label"], e["active"]) for e in entries] == [
        ("203.0.113.0/24", "office", True)
    ]
    table = cli("allow", "list", config=config)
    assert "203.0.113.0/24" in table.stdout and "office" in table.stdout
    removed = cli("allow", "remove", "203.0.113.0/24", config=config)
    assert removed.returncode == 0
    audit = cli("audit", "--json", config=config)
    assert [e["event"] for e in json.loads(audit.stdout)] == ["allowlist.remove", "allowlist.add"]


@pytest.mark.parametrize(
    ("network", "message"),
    [
        ("10.0.0.300/24", "is not an IPv4 or IPv6 network; example:"),
        ("fe80::/129", "example:"),
        ("cemm.example.org", "example:"),
    ],
)
def test_bad_input_exits_non_zero_and_writes_nothing(
    config: Path, network: str, message: str
) -> None:
    result = cli("allow", "add", network, config=config)
    assert result.returncode != 0
    assert message in result.stderr
    assert result.stderr.startswith("error: ")
    assert json.loads(cli("allow", "list", "--json", config=config).stdout)["entries"] == []
    assert json.loads(cli("audit", "--json", config=config).stdout) == []


def test_bad_expiry_writes_nothing(config: Path) -> None:
    result = cli("allow", "add", "203.0.113.9", "--expires", "soon", config=config)
    assert result.returncode == 1
    assert "for example 7d" in result.stderr
    assert json.loads(cli("allow", "list", "--json", config=config).stdout)["entries"] == []


def test_remove_unknown_entry(config: Path) -> None:
    result = cli("allow", "remove", "203.0.113.9", config=config)
    assert result.returncode == 1
    assert "is not on the allowlist" in result.stderr


def test_run_without_upstream_explains(config: Path) -> None:
    result = cli("run", config=config, timeout=20)
    assert result.returncode == 1
    assert "upstream.host is not set" in result.stderr


def test_invalid_config_exits_non_zero(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[listen]\nhttp_port = -1\n")
    result = cli("allow", "list", config=path)
    assert result.returncode == 1
    assert "listen.http_port" in result.stderr and "example" in result.stderr
