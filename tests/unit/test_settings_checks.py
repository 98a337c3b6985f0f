"""Rules across settings (gateway/settings/checks.py), all of which ``run`` and ``check``
apply before anything starts, and the list of ``CEMM_GATEWAY_*`` settings in the
environment."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.settings import Settings, SettingsError, check_startup, environment_variables


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("CEMM_GATEWAY_"):
            monkeypatch.delenv(key)


UPSTREAM = {"upstream": {"host": "192.168.2.34"}}

# (settings beyond the defaults, what the refusal names; None: accepted)
RULES: list[tuple[dict[str, Any], str | None]] = [
    (UPSTREAM, None),
    ({"upstream": {"mac": "80:1F:12:47:06:B0"}}, None),
    ({}, "upstream.host is not set, nor upstream.mac"),
    ({"upstream": {"host": "cemm", "probe_subnet": "10.0.0.0/24"}}, "upstream.probe_subnet"),
    ({**UPSTREAM, "oidc": {"enabled": True}}, "[oidc] enabled = true needs discovery_url"),
    ({**UPSTREAM, "oidc": {"client_id": "x"}}, None),
    ({**UPSTREAM, "tls": {"cert": "/c.pem"}}, "[tls] cert and key go together"),
    ({**UPSTREAM, "tls": {"key": "/k.pem"}}, "[tls] cert and key go together"),
    ({**UPSTREAM, "tls": {"cert": "/c.pem", "key": "/k.pem"}}, None),
    ({**UPSTREAM, "wireguard": {"enabled": True}}, "[wireguard] enabled = true needs endpoint"),
    ({**UPSTREAM, "wireguard": {"enabled": True, "endpoint": "home.example.org:51820"}}, None),
    # The first rule broken is the one named: the CEMM's address before anything else.
    ({"tls": {"cert": "/c.pem"}}, "upstream.host is not set"),
]


@pytest.mark.parametrize(("values", "named"), RULES)
def test_rules_across_settings(values: dict[str, Any], named: str | None) -> None:
    settings = Settings(**values)
    if named is None:
        check_startup(settings)
        return
    with pytest.raises(SettingsError, match=r"^invalid configuration: ") as raised:
        check_startup(settings)
    assert named in str(raised.value)


def test_environment_variables_are_the_settings_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert environment_variables() == []
    monkeypatch.setenv("CEMM_GATEWAY_CONFIG", "/etc/gateway.toml")  # names a file, not a setting
    monkeypatch.setenv("CEMM_GATEWAY_LOG__LEVEL", "debug")
    monkeypatch.setenv("CEMM_GATEWAY_ALLOWLIST_DEFAULT_NETWORKS", "[]")  # a typo is listed too
    monkeypatch.setenv("OTHER", "x")
    assert environment_variables() == [
        "CEMM_GATEWAY_ALLOWLIST_DEFAULT_NETWORKS",
        "CEMM_GATEWAY_LOG__LEVEL",
    ]
