"""compose.yaml and .env.example, read as a self-hoster's Docker reads them (no podman).

The container test (test_image.py) runs the image with the flags these files give; here
their content is pinned: the lock-down the issue asks for, and every setting the example
environment file names - commented or not - is a real setting whose example value the
gateway accepts.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from pydantic import BaseModel

from gateway.settings import Settings, load_settings
from tests.container.podman import ROOT, compose_environment, compose_service

ENV_LINE = re.compile(r"^#?\s*(CEMM_GATEWAY_[A-Z0-9_]+)=(.*)$")


def _example_variables() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = ENV_LINE.match(line.strip())
        if match:
            found[match.group(1)] = match.group(2)
    return found


def _setting_exists(variable: str) -> bool:
    """CEMM_GATEWAY_SECTION__KEY names a field of Settings."""
    model: Any = Settings
    parts = variable.removeprefix("CEMM_GATEWAY_").lower().split("__")
    for part in parts:
        fields = model.model_fields
        if part not in fields:
            return False
        model = fields[part].annotation
    return not (isinstance(model, type) and issubclass(model, BaseModel))


def test_compose_locks_the_container_down() -> None:
    service = compose_service()
    assert service["network_mode"] == "host"
    assert service["cap_drop"] == ["ALL"]
    assert sorted(service["cap_add"]) == ["NET_ADMIN", "NET_BIND_SERVICE"]
    assert service["read_only"] is True
    assert sorted(mount.split(":")[0] for mount in service["tmpfs"]) == ["/run", "/tmp"]
    assert [device.split(":")[0] for device in service["devices"]] == ["/dev/net/tun"]
    assert service["security_opt"] == ["no-new-privileges:true"]
    assert service["volumes"] == ["cemm-gateway-data:/data"]
    assert service["restart"] == "unless-stopped"
    assert service["env_file"] == ".env"
    assert "ports" not in service  # the published-ports alternative stays a comment
    assert service["secrets"] == ["admin_password"]
    assert compose_environment({}) == {
        "CEMM_GATEWAY_AUTH__INITIAL_ADMIN_PASSWORD_FILE": "/run/secrets/admin_password",
        "TZ": "Etc/UTC",
    }


def test_compose_passes_the_time_zone_through_and_rotates_the_log() -> None:
    assert compose_environment({"TZ": "Europe/Amsterdam"})["TZ"] == "Europe/Amsterdam"
    assert compose_environment({"TZ": ""})["TZ"] == "Etc/UTC"  # Compose's :- likewise
    logging = compose_service()["logging"]
    assert logging["driver"] in ("json-file", "local")
    assert logging["options"]["max-size"] and int(logging["options"]["max-file"]) >= 1
    # Built here until a published image exists; the image name is kept either way.
    assert compose_service()["build"]["context"] == "."
    assert compose_service()["image"]


def test_every_variable_in_the_examples_is_a_setting() -> None:
    variables = [
        *_example_variables(),
        *(name for name in compose_environment() if name.startswith("CEMM_GATEWAY_")),
    ]
    assert len(variables) > 10
    unknown = [variable for variable in variables if not _setting_exists(variable)]
    assert unknown == []


def test_the_example_values_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """All examples at once, commented ones included, make a valid configuration."""
    for variable in [v for v in os.environ if v.startswith("CEMM_GATEWAY_")]:
        monkeypatch.delenv(variable)
    for variable, value in _example_variables().items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("CEMM_GATEWAY_UPSTREAM__HOST", "192.168.2.34")
    settings = load_settings()
    assert settings.upstream.mac.upper() == "80:1F:12:47:06:B0"
    assert settings.allowlist.default_networks == ["192.168.2.0/24", "127.0.0.0/8", "::1/128"]
    assert settings.wireguard.enabled and settings.tls.enabled
