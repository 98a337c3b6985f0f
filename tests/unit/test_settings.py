"""Configuration: the documented file, environment overrides, and errors a user can act on."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gateway.settings import Settings, SettingsError, load_settings, require_upstream

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
    documented = tomllib.loads(DOCUMENTED.read_text())
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
