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


def test_allow_add_of_a_listed_network_says_it_updated_it(config: Path) -> None:
    first = cli("allow", "add", "203.0.113.7", "--label", "office", config=config)
    assert first.stdout == "allowed 203.0.113.7/32\n"
    again = cli("allow", "add", "203.0.113.7", "--label", "home", "--expires", "1d", config=config)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("updated 203.0.113.7/32 (label 'home', expires 20")
    assert again.stdout.endswith("; was label 'office', no expiry)\n")
    same = cli("allow", "add", "203.0.113.7/32", config=config)
    assert same.stdout.startswith("updated 203.0.113.7/32 (no label, no expiry; was label 'home'")
    assert (
        cli("allow", "add", "203.0.113.7", config=config).stdout
        == "updated 203.0.113.7/32 (no label, no expiry; unchanged)\n"
    )
    entries = json.loads(cli("allow", "list", "--json", config=config).stdout)["entries"]
    assert [(e["network"], e["label"], e["expires_at"]) for e in entries] == [
        ("203.0.113.7/32", "", None)
    ]
    audit = json.loads(cli("audit", "--json", "--event", "allowlist", config=config).stdout)
    assert [e["event"] for e in audit] == [
        "allowlist.update",
        "allowlist.update",
        "allowlist.update",
        "allowlist.add",
    ]
    assert audit[2]["detail"]["previous_label"] == "office"
    assert audit[2]["detail"]["previous_expires_at"] is None
    assert audit[2]["detail"]["label"] == "home"
    assert audit[1]["detail"]["previous_expires_at"] == audit[2]["detail"]["expires_at"]


def test_audit_filters_and_csv(config: Path) -> None:
    for name in ("anna", "bert"):
        added = cli(
            "user",
            "add",
            name,
            "--role",
            "user",
            "--password-stdin",
            config=config,
            input="a long password 1\n",
        )
        assert added.returncode == 0, added.stderr
    assert cli("user", "disable", "bert", config=config).returncode == 0
    assert cli("allow", "add", "203.0.113.7", config=config).returncode == 0

    def events(*options: str) -> list[tuple[str, str | None]]:
        result = cli("audit", "--json", *options, config=config)
        assert result.returncode == 0, result.stderr
        return [(e["event"], e["detail"].get("user")) for e in json.loads(result.stdout)]

    assert events("--user", "BERT") == [("user.disable", "bert"), ("user.add", "bert")]
    assert events("--event", "user") == [
        ("user.disable", "bert"),
        ("user.add", "bert"),
        ("user.add", "anna"),
    ]
    assert events("--event", "user.add", "--user", "anna") == [("user.add", "anna")]
    assert events("--event", "allowlist") == [("allowlist.add", None)]
    assert events("--until", "2000-01-01") == []
    assert events("--since", "1h", "--limit", "1") == [("allowlist.add", None)]

    # CSV holds every matching entry; --limit still cuts it when given.
    everything = cli("audit", "--csv", config=config).stdout.splitlines()
    assert len(everything) == 1 + len(events())
    assert len(cli("audit", "--csv", "--limit", "2", config=config).stdout.splitlines()) == 3
    csv_out = cli("audit", "--csv", "--event", "user.disable", config=config)
    assert csv_out.returncode == 0, csv_out.stderr
    header, row = csv_out.stdout.splitlines()
    assert header == "time,actor,event,client_address,user_agent,detail"
    assert ",user.disable," in row and '""user"": ""bert""' in row

    none = cli("audit", "--user", "nobody", config=config)
    assert (none.returncode, none.stdout) == (0, "No audit entries match.\n")
    for bad, message in (
        (["--until", "soon"], "--until 'soon' is neither a duration nor a date"),
        (["--limit", "0"], "--limit must be at least 1"),
    ):
        refused = cli("audit", *bad, config=config)
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr
    both = cli("audit", "--json", "--csv", config=config)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


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


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (("user", "list"), "NAME  ROLE  STATE  2FA  SIGN-IN  EMAIL\n"),
        (("session", "list"), "No active sessions.\n"),
        (
            ("token", "list"),
            "No API tokens. Create one with: cemm-gateway token add USER --name 'home assistant'\n",
        ),
        (("bans", "list"), "No active bans.\n"),
        (("peer", "list"), "No peers. Add a phone with: cemm-gateway peer add 'anna phone' --qr\n"),
    ],
)
def test_list_commands_without_entries(
    config: Path, command: tuple[str, ...], expected: str
) -> None:
    result = cli(*command, config=config)
    assert (result.returncode, result.stdout, result.stderr) == (0, expected, "")
    listed = cli(*command, "--json", config=config)
    assert (listed.returncode, json.loads(listed.stdout)) == (0, [])


def test_list_table_columns_fit_their_widest_cell(config: Path) -> None:
    for name, options in [
        ("anna", ["--role", "admin", "--email", "anna@example.org"]),
        ("a-rather-long-user-name", ["--role", "user"]),
    ]:
        added = cli(
            "user", "add", name, *options, "--password-stdin", config=config, input="Pass-4-cli!\n"
        )
        assert added.returncode == 0, added.stderr
    assert cli("user", "disable", "a-rather-long-user-name", config=config).returncode == 0
    table = cli("user", "list", config=config)
    assert table.returncode == 0
    # Every cell, the last of a line too, is padded to its column's widest cell.
    assert table.stdout == (
        "NAME                     ROLE   STATE     2FA  SIGN-IN   EMAIL           \n"
        "a-rather-long-user-name  user   disabled  off  password  -               \n"
        "anna                     admin  enabled   off  password  anna@example.org\n"
    )


def test_allow_list_table_is_indented_under_its_title(config: Path) -> None:
    for network, label in [("203.0.113.0/24", "office"), ("2001:db8::/32", "a wide label")]:
        assert cli("allow", "add", network, "--label", label, config=config).returncode == 0
    actor = json.loads(cli("allow", "list", "--json", config=config).stdout)["entries"][0][
        "created_by"
    ]
    table = cli("allow", "list", config=config)
    assert table.returncode == 0
    width = max(len("ADDED BY"), len(actor))
    assert table.stdout.split("Added entries:\n")[1] == (
        f"  NETWORK         LABEL         EXPIRES  HITS  LAST HIT  {'ADDED BY'.ljust(width)}\n"
        f"  2001:db8::/32   a wide label  -        0     -         {actor.ljust(width)}\n"
        f"  203.0.113.0/24  office        -        0     -         {actor.ljust(width)}\n"
    )
