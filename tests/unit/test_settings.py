"""Configuration: the documented file, environment overrides, and errors a user can act on."""

from __future__ import annotations

import json
import shlex
import tomllib
from pathlib import Path
from typing import Literal, get_origin

import pytest

from gateway.settings import (
    Settings,
    SettingsError,
    env_example,
    env_name,
    example_value,
    load_settings,
    require_upstream,
    setting_field,
    setting_keys,
    toml_example,
)
from gateway.settings import runtime as runtime_rules

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED = ROOT / "config" / "gateway.toml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("CEMM_GATEWAY_"):
            monkeypatch.delenv(key)


def test_documented_file_lists_every_setting_with_its_default() -> None:
    text = DOCUMENTED.read_text()
    documented = tomllib.loads(text)
    # Settings changed at run time are commented out (set, they would lock the admin app's
    # switch), with their default in the comment: "# enabled = false" in their section.
    for key in runtime_rules.RUNTIME_KEYS:
        section, _, name = key.rpartition(".")
        assert name not in documented[section], f"{key} must be commented out"
        body = text.split(f"[{section}]\n", 1)[1].split("\n[", 1)[0]
        lines = [line[2:] for line in body.splitlines() if line.startswith(f"# {name} = ")]
        assert len(lines) == 1, f"{key}: no '# {name} = <default>' line"
        documented[section].update(tomllib.loads(lines[0]))
    defaults = Settings().model_dump(mode="json")
    assert documented == defaults


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, '[listen]\nhttp_port = 81\nhost = "127.0.0.1"\n')
    monkeypatch.setenv("CEMM_GATEWAY_LISTEN__HTTP_PORT", "8080")
    monkeypatch.setenv("CEMM_GATEWAY_ALLOWLIST__TRUSTED_PROXIES", '["192.168.1.2"]')
    settings = load_settings(path)
    assert settings.listen.http_port == 8080
    assert settings.listen.host == "127.0.0.1"  # from the file, merged with the environment
    assert settings.allowlist.trusted_proxies == ["192.168.1.2"]


def test_config_file_named_by_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, '[upstream]\nhost = "cemm.lan"\n')
    monkeypatch.setenv("CEMM_GATEWAY_CONFIG", str(path))
    assert load_settings().upstream.host == "cemm.lan"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[listen]\nhttp_port = 70000\n",
            "listen.http_port: must be a TCP port from 1 to 65535; "
            "example: [listen] http_port = 8080",
        ),
        ("[allowlist]\nspelled_wrong = []\n", "allowlist.spelled_wrong: is not a known setting"),
        (
            '[allowlist]\ndefault_networks = ["10.0.0.300/24"]\n',
            "allowlist entry '10.0.0.300/24' is not an IPv4 or IPv6 network",
        ),
        (
            '[upstream]\nhost = "http://cemm"\n',
            "upstream.host: must be a host name or an IP address",
        ),
        ('[log]\nlevel = "loud"\n', "log.level"),
        ("not toml at all [", "is not valid TOML"),
    ],
)
def test_invalid_configuration_names_the_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(_write(tmp_path, text))
    assert expected in str(error.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_upstream_host_is_required() -> None:
    with pytest.raises(SettingsError, match=r'\[upstream\] host = "192.168.2.34"'):
        require_upstream(load_settings())


def _wrong_value(key: str) -> object:
    """A value of the wrong type for the setting ``key``, as a person might mistype it."""
    annotation = setting_field(key).annotation
    origin = get_origin(annotation)
    if annotation is bool:
        return "maybe"
    if annotation in (int, float):
        return "many"
    if annotation in (str, Path):
        return 12
    if origin is list:
        return "192.168.1.0/24"
    if origin is Literal:
        return "loud"
    return "sometimes"  # a union such as bool | Literal["auto"]


def _toml(key: str, value: object) -> str:
    section, _, name = key.rpartition(".")
    text = json.dumps(value)
    return f"[{section}]\n{name} = {text}\n" if section else f"{name} = {text}\n"


def test_every_setting_has_an_example_that_is_not_empty() -> None:
    keys = setting_keys()
    assert len(keys) == len(set(keys)) > 60
    for key in keys:
        assert example_value(key) not in ("", [], None), key


@pytest.mark.parametrize("key", setting_keys())
def test_every_example_is_a_valid_value(
    key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings(_write(tmp_path, toml_example(key).replace("] ", "]\n", 1)))
    variable, _, value = shlex.split(env_example(key))[0].partition("=")
    assert variable == env_name(key)
    monkeypatch.setenv(variable, value)
    assert load_settings()


@pytest.mark.parametrize("key", setting_keys())
def test_a_wrong_type_in_the_file_names_the_key_and_shows_an_example(
    key: str, tmp_path: Path
) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(_write(tmp_path, _toml(key, _wrong_value(key))))
    text = str(error.value)
    assert f"\n  {key}: " in text
    assert f"; example: {toml_example(key)}" in text
    assert "literal[" not in text and "pydantic" not in text and "<class" not in text


@pytest.mark.parametrize(
    "key", [key for key in setting_keys() if setting_field(key).annotation not in (str, Path)]
)
def test_a_wrong_value_in_the_environment_names_the_variable_and_shows_an_example(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env_name(key), str(_wrong_value(key)))
    with pytest.raises(SettingsError) as error:
        load_settings()
    text = str(error.value)
    assert f"\n  {env_name(key)} ({key}): " in text
    assert f"; example: {env_example(key)}" in text


def test_a_union_is_one_error_with_the_accepted_values(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(_write(tmp_path, '[tls]\nsingle_port = "sometimes"\n'))
    assert str(error.value).splitlines()[1:] == [
        '  tls.single_port: must be true, false or "auto"; example: [tls] single_port = true'
    ]


def test_a_list_in_the_environment_that_is_not_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEMM_GATEWAY_AUTH__TRUSTED_NETWORKS", "192.168.1.0/24")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value) == (
        "invalid configuration (environment):\n"
        "  CEMM_GATEWAY_AUTH__TRUSTED_NETWORKS (auth.trusted_networks): must be a JSON list, "
        "with quoted items; example: "
        "CEMM_GATEWAY_AUTH__TRUSTED_NETWORKS='[\"192.168.1.0/24\"]'"
    )


def test_a_variable_that_names_no_setting_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # One underscore instead of two: without the check, the default networks would stay.
    monkeypatch.setenv("CEMM_GATEWAY_ALLOWLIST_DEFAULT_NETWORKS", '["192.168.1.0/24"]')
    monkeypatch.setenv("CEMM_GATEWAY_NONSENSE", "1")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value) == (
        "invalid configuration (environment):\n"
        "  CEMM_GATEWAY_ALLOWLIST_DEFAULT_NETWORKS: not a setting of the gateway; did you mean "
        "CEMM_GATEWAY_ALLOWLIST__DEFAULT_NETWORKS?\n"
        "  CEMM_GATEWAY_NONSENSE: not a setting of the gateway; settings are named like "
        "CEMM_GATEWAY_UPSTREAM__HOST"
    )


def test_sections_and_the_config_path_are_known_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text("")
    monkeypatch.setenv("CEMM_GATEWAY_CONFIG", str(path))
    monkeypatch.setenv("CEMM_GATEWAY_AUTH__BRUTEFORCE", '{"ban_after": 7}')
    monkeypatch.setenv("cemm_gateway_log__level", "debug")
    settings = load_settings()
    assert settings.auth.bruteforce.ban_after == 7


def test_a_section_given_as_json_in_the_environment_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CEMM_GATEWAY_TLS", '{"enabled": "maybe"}')
    path = _write(tmp_path, "[listen]\nhttp_port = 0\n")
    with pytest.raises(SettingsError) as error:
        load_settings(path)
    lines = str(error.value).splitlines()
    assert "  listen.http_port: must be a TCP port from 1 to 65535" in lines[1]
    assert lines[2].startswith("  CEMM_GATEWAY_TLS (tls.enabled): Input should be a valid boolean")
    assert lines[2].endswith("; example: CEMM_GATEWAY_TLS__ENABLED=true")
