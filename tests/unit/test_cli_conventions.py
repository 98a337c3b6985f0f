"""The conventions every ``cemm-gateway`` command follows: ``--version``, where ``--config``
may stand, refusing to manage a gateway that is not there, ``check``, and the one mapping
of refusals to ``error: ...`` and an exit code."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest

from gateway import cli, version
from gateway.cli import audit, common
from gateway.durations import DurationError
from gateway.services.errors import Conflict, Forbidden, Invalid, NotFound
from gateway.settings import Settings, SettingsError
from gateway.store.db import StoreError


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("CEMM_GATEWAY_"):
            monkeypatch.delenv(key)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n[upstream]\nhost = "192.168.2.34"\n')
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


# -- --version ------------------------------------------------------------------------------
def test_version_is_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    installed = metadata.version("cemm-gateway")
    assert version.version() == installed
    assert _run(capsys, "--version") == (0, f"cemm-gateway {installed}\n", "")


def test_version_of_a_tree_that_was_never_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    version.version.cache_clear()
    try:
        assert version.version() == "unknown"
    finally:
        monkeypatch.undo()
        version.version.cache_clear()


# -- --config -------------------------------------------------------------------------------
def _networks(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    return [entry["network"] for entry in json.loads(out)["entries"]]


def test_config_before_or_after_the_subcommand_or_from_the_environment(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _run(capsys, "--config", str(config), "allow", "add", "203.0.113.7")[0] == 0
    assert _run(capsys, "allow", "--config", str(config), "add", "203.0.113.8")[0] == 0
    assert _run(capsys, "allow", "add", "203.0.113.9", "--config", str(config))[0] == 0
    expected = ["203.0.113.7/32", "203.0.113.8/32", "203.0.113.9/32"]
    assert _networks(capsys, "allow", "list", "--json", "--config", str(config)) == expected
    monkeypatch.setenv("CEMM_GATEWAY_CONFIG", str(config))
    assert _networks(capsys, "allow", "list", "--json") == expected


def test_the_config_after_the_subcommand_wins(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.toml"
    code, _, err = _run(capsys, "--config", str(config), "user", "list", "--config", str(missing))
    assert (code, err) == (1, f"error: configuration file {missing} does not exist\n")


@pytest.mark.parametrize("command", ["demo", "simulator"])
def test_demo_and_simulator_refuse_a_config_they_would_ignore(
    command: str, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "--config", str(config), command)
    assert (code, err) == (
        1,
        f"error: '{command}' runs with its own built-in configuration; --config is not used\n",
    )


# -- no gateway to manage -------------------------------------------------------------------
@pytest.fixture
def default_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Built-in defaults, but with the data directory (``/data``) under ``tmp_path``."""
    data = tmp_path / "default-data"
    monkeypatch.setattr(common, "load_settings", lambda path: Settings(data_dir=data))
    return data


def test_a_management_command_with_nothing_configured_refuses_and_says_where_it_looked(
    default_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "user", "list")
    assert (code, out) == (1, "")
    for place in ("--config FILE", "$CEMM_GATEWAY_CONFIG", "CEMM_GATEWAY_*", str(default_data_dir)):
        assert place in err
    assert "no gateway.db" in err
    assert not default_data_dir.exists()  # no empty database made


@pytest.mark.parametrize(
    "found",
    ["an existing database", "a settings variable", "CEMM_GATEWAY_CONFIG"],
)
def test_a_management_command_goes_ahead_when_it_finds_a_gateway(
    found: str,
    default_data_dir: Path,
    config: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if found == "an existing database":
        default_data_dir.mkdir()
        sqlite3.connect(default_data_dir / "gateway.db").close()
    elif found == "a settings variable":
        monkeypatch.setenv("CEMM_GATEWAY_LOG__LEVEL", "info")
    else:
        monkeypatch.setenv("CEMM_GATEWAY_CONFIG", str(config))
    assert _run(capsys, "user", "list")[:2] == (0, "NAME  ROLE  STATE  2FA  SIGN-IN  EMAIL\n")


@pytest.mark.skipif(Path("/data/gateway.db").exists(), reason="this machine runs a gateway")
def test_the_real_default_data_directory_is_not_created(
    capsys: pytest.CaptureFixture[str],
) -> None:
    existed = Path("/data").exists()
    code, _, err = _run(capsys, "token", "list")
    assert code == 1 and "/data (no gateway.db)" in err
    assert Path("/data").exists() == existed


def test_run_and_check_are_not_management_commands(
    default_data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # With nothing configured they read the built-in defaults, and say what is missing.
    monkeypatch.setattr("gateway.cli.server.load_settings", lambda path: Settings())
    code, _, err = _run(capsys, "check")
    assert code == 1 and "upstream.host is not set" in err


# -- check ----------------------------------------------------------------------------------
def test_check_a_good_file(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "check", "--config", str(config)) == (
        0,
        f"configuration OK: {config}\n",
        "",
    )
    assert not (config.parent / "data").exists()  # a check writes nothing


def test_check_the_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CEMM_GATEWAY_UPSTREAM__MAC", "80:1f:12:47:06:b0")
    monkeypatch.setenv("CEMM_GATEWAY_DATA_DIR", str(tmp_path))
    assert _run(capsys, "check") == (
        0,
        "configuration OK: built-in defaults and 2 setting(s) from the environment\n",
        "",
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[upstream]\nhost = "cemm"\n[listen]\nhttp_port = 0\n', "listen.http_port: must be"),
        ('[upstream]\nhost = "cemm"\nprobe_subnet = "10.0.0.0/24"\n', "upstream.probe_subnet"),
        ('[upstream]\nhost = "cemm"\n[tls]\ncert = "/c.pem"\n', "[tls] cert and key"),
        ('[upstream]\nhost = "cemm"\n[wireguard]\nenabled = true\n', "needs endpoint"),
        ("[upstream]\nhots = 1\n", "upstream.hots: is not a known setting"),
        ("[upstream\n", "is not valid TOML"),
        ("", "upstream.host is not set"),
    ],
)
def test_check_a_bad_file_names_the_key(
    text: str, named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    code, out, err = _run(capsys, "check", "--config", str(path))
    assert (code, out) == (1, "")
    assert err.startswith("error: ") and named in err, err


def test_check_names_a_bad_environment_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CEMM_GATEWAY_UPSTREAM__HOST", "192.168.2.34")
    monkeypatch.setenv("CEMM_GATEWAY_LISTEN__HTTP_PORT", "70000")
    code, _, err = _run(capsys, "check")
    assert code == 1 and "CEMM_GATEWAY_LISTEN__HTTP_PORT (listen.http_port)" in err


# -- refusals: mapped in one place ----------------------------------------------------------
def _raising(error: BaseException) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        raise error

    return handler


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (NotFound("there is no user 'x'"), 1, "error: there is no user 'x'\n"),
        (Conflict("already there"), 1, "error: already there\n"),
        (Invalid("bad", field="name"), 1, "error: bad\n"),
        (Forbidden("not you"), 1, "error: not you\n"),
        (DurationError("expiry 'soon' is not a duration"), 1, "error: expiry 'soon' is"),
        (SettingsError("invalid configuration"), 1, "error: invalid configuration\n"),
        (common.CommandError("give one"), 1, "error: give one\n"),
        (StoreError("the disk is full"), 1, "error: the disk is full\n"),
        (sqlite3.OperationalError("locked"), 1, "error: the database could not be written"),
        (KeyboardInterrupt(), 130, ""),
    ],
)
def test_refusals_become_one_line_and_an_exit_code(
    error: BaseException, code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert common.run(_raising(error), argparse.Namespace()) == code
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(message)


def test_a_bug_is_not_a_refusal() -> None:
    with pytest.raises(ZeroDivisionError):
        common.run(_raising(ZeroDivisionError()), argparse.Namespace())


# -- --since / --until ----------------------------------------------------------------------
def test_a_moment_out_of_range_is_refused_with_its_option() -> None:
    with pytest.raises(common.CommandError, match=r"^--since .* is out of range$"):
        audit.parse_moment("0001-01-01", "--since")


def test_a_moment_with_an_offset_is_that_moment() -> None:
    assert audit.parse_moment("2026-11-01T08:00+01:00", "--until") == 1_793_516_400.0
