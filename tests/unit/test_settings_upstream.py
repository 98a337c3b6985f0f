"""[upstream] mac, probe_subnet, health and drift settings; [metrics]; [log] access."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import SettingsError, load_settings, require_upstream


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("CEMM_GATEWAY_"):
            monkeypatch.delenv(key)


def _load(tmp_path: Path, text: str):
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return load_settings(path)


def test_mac_alone_is_enough_and_is_normalised(tmp_path: Path) -> None:
    settings = _load(tmp_path, '[upstream]\nmac = "80-1f-12-47-06-b0"\n')
    assert settings.upstream.mac == "80:1F:12:47:06:B0"
    require_upstream(settings)


def test_neither_host_nor_mac_names_both(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        require_upstream(_load(tmp_path, ""))
    text = str(raised.value)
    assert '[upstream] host = "192.168.2.34"' in text
    assert '[upstream] mac = "80:1F:12:47:06:B0"' in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[upstream]\nmac = "80:1F:12:47:06"\n', "is not a MAC address"),
        ('[upstream]\nmac = "x"\nhost = "h"\n', 'example: [upstream] mac = "80:1F:12:47:06:B0"'),
        ('[upstream]\nmac = "80:1F:12:47:06:B0"\nprobe_subnet = "10.0.0.0/16"\n', "at most 1024"),
        ('[upstream]\nmac = "80:1F:12:47:06:B0"\nprobe_subnet = "nope"\n', "not an IPv4 or IPv6"),
        ("[upstream]\nhealth_interval = 0.1\n", "health_interval"),
        ("[upstream]\nclock_drift_threshold = 0\n", "clock_drift_threshold"),
    ],
)
def test_invalid_values_say_what_to_do(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(SettingsError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        _load(tmp_path, text)


def test_probe_subnet_needs_a_mac(tmp_path: Path) -> None:
    settings = _load(
        tmp_path, '[upstream]\nhost = "192.168.2.34"\nprobe_subnet = "192.168.2.0/24"\n'
    )
    with pytest.raises(SettingsError, match="only used to find the CEMM by its MAC"):
        require_upstream(settings)


def test_probe_subnet_is_normalised(tmp_path: Path) -> None:
    settings = _load(
        tmp_path, '[upstream]\nmac = "80:1F:12:47:06:B0"\nprobe_subnet = "192.168.2.7/24"\n'
    )
    assert settings.upstream.probe_subnet == "192.168.2.0/24"


def test_scrape_token_is_not_in_repr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEMM_GATEWAY_METRICS__SCRAPE_TOKEN", "very-secret-token")
    monkeypatch.setenv("CEMM_GATEWAY_LOG__ACCESS", "true")
    settings = _load(tmp_path, "")
    assert settings.metrics.scrape_token == "very-secret-token"
    assert settings.log.access is True
    assert "very-secret-token" not in repr(settings)
