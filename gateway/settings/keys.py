"""Settings by their dotted key (``tls.enabled``): the list of keys, the field behind one,
a valid example of each, and how that example is written in the file and the environment.

The example is the one in ``_EXAMPLES``, or else the default (``true`` for a switch), so no
setting is without one; a test makes sure every example is itself valid.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from gateway.settings.model import ENV_PREFIX, Settings

# Examples shown next to a settings error, by dotted key, where the default does not make a
# good example (it is empty, or long). Every other setting's example is its default; a test
# makes sure every setting has a non-empty example that is itself valid.
_EXAMPLES: dict[str, Any] = {
    "upstream.host": "192.168.2.34",
    "upstream.mac": "80:1F:12:47:06:B0",
    "upstream.probe_subnet": "192.168.2.0/24",
    "listen.host": "192.168.1.10",
    "listen.http_port": 8080,
    "listen.public_url": "https://cemm.example.org",
    "allowlist.default_networks": ["192.168.0.0/16", "fd00::/8"],
    "allowlist.admin_networks": ["192.168.1.0/24"],
    "allowlist.trusted_proxies": ["192.168.1.2"],
    "tls.cert": "/data/tls/fullchain.pem",
    "tls.key": "/data/tls/privkey.pem",
    "tls.hostnames": ["cemm.example.org"],
    "tls.addresses": ["192.168.1.10"],
    "tls.single_port": True,
    "acme.email": "owner@example.org",
    "acme.domains": ["cemm.example.org"],
    "acme.directory_url": "https://acme-staging-v02.api.letsencrypt.org/directory",
    "acme.ca_bundle": "/data/acme-ca.pem",
    "acme.dns_hook": "/data/acme-hook.sh",
    "acme.dns.provider": "desec",
    "wireguard.subnet6": "fd13:13:13::/64",
    "wireguard.endpoint": "home.example.org:51820",
    "auth.trusted_networks": ["192.168.1.0/24"],
    "auth.public_hostnames": ["cemm.example.org"],
    "auth.initial_admin_password": "a long passphrase",
    "auth.initial_admin_password_file": "/run/secrets/admin_password",
    "oidc.discovery_url": "https://sso.example.org/.well-known/openid-configuration",
    "oidc.client_id": "cemm-gateway",
    "oidc.client_secret": "the secret the provider shows",
    "oidc.client_secret_file": "/run/secrets/oidc_client_secret",
    "oidc.redirect_uri": "https://cemm.example.org/.gateway/oidc/callback",
    "oidc.allowed_emails": ["alice@example.org"],
    "oidc.allowed_groups": ["cemm-users"],
    "metrics.scrape_token": "a long random token",
    "metrics.scrape_token_file": "/run/secrets/metrics_token",
    "notify.urls": ["ntfy://ntfy.sh/a-long-random-topic"],
    "notify.urls_file": "/run/secrets/notify_urls",
    "notify.events": ["login.new_device", "ban", "upstream.down"],
    "backup.directory": "/backups",
    "backup.passphrase_file": "/run/secrets/backup_passphrase",
    "ui.timezone": "Europe/Amsterdam",
}


def section_model(field: FieldInfo) -> type[BaseModel] | None:
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def setting_keys(model: type[BaseModel] = Settings, prefix: str = "") -> list[str]:
    """Every setting's dotted key (``tls.enabled``, ``auth.bruteforce.never_ban``), in order."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        section = section_model(field)
        if section is None:
            keys.append(prefix + name)
        else:
            keys.extend(setting_keys(section, f"{prefix}{name}."))
    return keys


def setting_field(key: str) -> FieldInfo:
    """The field behind the dotted key (a setting, or a section); KeyError if none."""
    model: type[BaseModel] | None = Settings
    field: FieldInfo | None = None
    for name in key.split("."):
        if model is None or name not in model.model_fields:
            raise KeyError(key)
        field = model.model_fields[name]
        model = section_model(field)
    if field is None:
        raise KeyError(key)
    return field


def example_value(key: str) -> Any:
    """A valid value for the setting ``key``: the curated example, else the default.

    For a section, the example of its first setting.
    """
    field = setting_field(key)
    section = section_model(field)
    if section is not None:
        return example_value(f"{key}.{next(iter(section.model_fields))}")
    if key in _EXAMPLES:
        return _EXAMPLES[key]
    if field.annotation is bool:
        return True
    default = field.get_default(call_default_factory=True)
    return str(default) if isinstance(default, Path) else default


def leaf_key(key: str) -> str:
    """``key`` itself for a setting, the first setting of the section for a section."""
    section = section_model(setting_field(key))
    return leaf_key(f"{key}.{next(iter(section.model_fields))}") if section else key


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(str(value))


def env_name(key: str) -> str:
    """The environment variable that sets ``key``: ``CEMM_GATEWAY_TLS__ENABLED``."""
    return ENV_PREFIX + key.replace(".", "__").upper()


def toml_example(key: str) -> str:
    """``[tls] enabled = true``: how the example for ``key`` is written in the file."""
    key = leaf_key(key)
    section, _, name = key.rpartition(".")
    where = f"[{section}] " if section else ""
    return f"{where}{name} = {toml_value(example_value(key))}"


def env_example(key: str) -> str:
    """``CEMM_GATEWAY_TLS__ENABLED=true``: the example for ``key`` as a shell assignment."""
    key = leaf_key(key)
    value = example_value(key)
    if isinstance(value, str):
        text = value
    elif isinstance(value, list):
        text = json.dumps(value)
    else:
        text = toml_value(value)
    return f"{env_name(key)}={shlex.quote(text)}"
