"""The gateway's static settings: one TOML file, overridden by environment variables.

Precedence, lowest first: built-in defaults, the TOML file given with ``--config`` (or named
by ``CEMM_GATEWAY_CONFIG``), then environment variables. An environment variable names a
key with the ``CEMM_GATEWAY_`` prefix and ``__`` between section and key, for example
``CEMM_GATEWAY_LISTEN__HTTP_PORT=8080``; list values are JSON, for example
``CEMM_GATEWAY_ALLOWLIST__TRUSTED_PROXIES='["192.168.1.2"]'``. That is how container users
configure the gateway.

Unknown keys are errors, not silently ignored: a mistyped ``[allowlist]`` key on a security
appliance must not leave the operator believing a rule is active. The same holds for a
``CEMM_GATEWAY_*`` variable that names no setting (``CEMM_GATEWAY_ALLOWLIST_DEFAULT_NETWORKS``,
one underscore short); only ``CEMM_GATEWAY_CONFIG`` is not a setting. Every error names the
key, or the environment variable when the value came from there, and shows a valid example
written the same way (:class:`SettingsError`). The example is the one in ``_EXAMPLES``, or
else the default (``true`` for a switch), so no setting is without one.

``config/gateway.toml`` documents every setting with its default; a test keeps that file
and this module in step.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import shlex
import tomllib
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

from gateway.policy.allowlist import AllowlistEntryError, parse_network

ENV_PREFIX = "CEMM_GATEWAY_"
CONFIG_ENV = "CEMM_GATEWAY_CONFIG"

PRIVATE_NETWORKS: tuple[str, ...] = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
    "127.0.0.0/8",
    "::1/128",
)

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
}

# The largest subnet the gateway probes when looking for the CEMM by MAC (a /22).
MAX_PROBE_ADDRESSES = 1024
_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}")


class SettingsError(Exception):
    """The configuration cannot be used; the message says which key and how to fix it."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _port(value: int, *, allow_zero: bool) -> int:
    low = 0 if allow_zero else 1
    if not low <= value <= 65535:
        raise ValueError(f"must be a TCP port from {low} to 65535")
    return value


def _networks(values: list[str]) -> list[str]:
    for value in values:
        try:
            parse_network(value)
        except AllowlistEntryError as error:
            raise ValueError(str(error)) from None
    return values


class UpstreamSettings(_Section):
    """Where the CEMM is: its address, or its MAC (followed across DHCP changes)."""

    host: str = ""
    mac: str = ""
    http_port: int = 80
    ws_port: int = 8090
    connect_timeout: float = Field(default=5.0, gt=0, le=120)
    response_timeout: float = Field(default=30.0, gt=0, le=3600)
    websocket_ping_interval: float = Field(default=20.0, gt=0, le=3600)
    probe_subnet: str = ""
    health_interval: float = Field(default=5.0, ge=1, le=3600)
    clock_drift_threshold: float = Field(default=30.0, gt=0)

    @field_validator("mac")
    @classmethod
    def _check_mac(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return ""
        if not _MAC_RE.fullmatch(value):
            raise ValueError(
                f"'{value}' is not a MAC address; six hex pairs, as the CEMM shows under "
                "Instellingen > Systeem"
            )
        return value.replace("-", ":").upper()

    @field_validator("probe_subnet")
    @classmethod
    def _check_probe_subnet(cls, value: str) -> str:
        if not value:
            return ""
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"'{value}' is not an IPv4 or IPv6 network") from None
        if network.num_addresses > MAX_PROBE_ADDRESSES:
            raise ValueError(
                f"{network} has {network.num_addresses} addresses; the probe covers at most "
                f"{MAX_PROBE_ADDRESSES} (a /22 for IPv4), give the CEMM's own LAN"
            )
        return str(network)

    @field_validator("http_port", "ws_port")
    @classmethod
    def _check_port(cls, value: int) -> int:
        return _port(value, allow_zero=False)

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        if any(c.isspace() for c in value) or "/" in value or "@" in value:
            raise ValueError("must be a host name or an IP address, without scheme or port")
        return value


class ListenSettings(_Section):
    """Where the gateway listens. ``host = ""`` means every address, IPv4 and IPv6."""

    host: str = ""
    http_port: int = 80
    ws_port: int = 8090
    admin_port: int = 8443
    public_url: str = ""

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        if not value:
            return value
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            parts = None
        if (
            parts is None
            or parts.scheme.lower() not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or parts.username is not None
        ):
            raise ValueError(
                f"'{value}' is not the gateway's public address; give the scheme, the name "
                "and the port if not 80/443 that people type in the browser, without a path: "
                "e.g. https://cemm.example.org"
            )
        return value.rstrip("/")

    @field_validator("http_port", "admin_port")
    @classmethod
    def _check_port(cls, value: int) -> int:
        return _port(value, allow_zero=False)

    @field_validator("ws_port")
    @classmethod
    def _check_ws_port(cls, value: int) -> int:
        return _port(value, allow_zero=True)


class AllowlistSettings(_Section):
    """The networks that may connect at all (entries added at run time come on top)."""

    default_networks: list[str] = Field(default_factory=lambda: list(PRIVATE_NETWORKS))
    admin_networks: list[str] = Field(default_factory=lambda: list(PRIVATE_NETWORKS))
    trusted_proxies: list[str] = Field(default_factory=list)

    _check_networks = field_validator("default_networks", "admin_networks", "trusted_proxies")(
        classmethod(lambda cls, values: _networks(values))
    )


class TlsSettings(_Section):
    """HTTPS on every listener."""

    enabled: bool = False
    cert: str = ""
    key: str = ""
    hostnames: list[str] = Field(default_factory=list)
    addresses: list[str] = Field(default_factory=list)
    hsts: bool = False
    hsts_max_age: int = Field(default=31536000, ge=0)
    single_port: bool | Literal["auto"] = "auto"

    @field_validator("addresses")
    @classmethod
    def _check_addresses(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError(
                    f"'{value}' is not an IP address; example: [\"192.168.1.10\"]"
                ) from None
        return values


class WireguardSettings(_Section):
    """The optional WireGuard endpoint: phones reach the gateway, and nothing else."""

    enabled: bool = False
    interface: str = "wg0"
    listen_port: int = 51820
    subnet: str = "10.13.13.0/24"
    subnet6: str = ""
    endpoint: str = ""
    keepalive: int = Field(default=25, ge=0, le=3600)

    @field_validator("interface")
    @classmethod
    def _check_interface(cls, value: str) -> str:
        if not value or len(value) > 15 or not all(c.isalnum() or c in "-_." for c in value):
            raise ValueError("must be an interface name of 1-15 letters, digits, '-', '_' or '.'")
        return value

    @field_validator("listen_port")
    @classmethod
    def _check_port(cls, value: int) -> int:
        return _port(value, allow_zero=False)

    @field_validator("subnet", "subnet6")
    @classmethod
    def _check_subnet(cls, value: str, info: Any) -> str:
        if not value:
            if info.field_name == "subnet":
                raise ValueError("needs an IPv4 network for the tunnel")
            return value
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError as error:
            raise ValueError(f"'{value}' is not a network: {error}") from None
        wanted = 4 if info.field_name == "subnet" else 6
        if network.version != wanted or network.num_addresses < 4:
            raise ValueError(f"must be an IPv{wanted} network with room for peers")
        return value

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        if value:
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in value:
                raise ValueError("must be host:port, the address phones dial")
        return value


class LimitsSettings(_Section):
    """Bounds on what one request may make the gateway hold."""

    max_header_bytes: int = Field(default=16384, ge=1024, le=1048576)
    max_request_body_bytes: int = Field(default=16 * 1024 * 1024, ge=0)
    header_timeout: float = Field(default=10.0, ge=0, le=3600)
    idle_timeout: float = Field(default=60.0, ge=0, le=86400)
    max_connections_per_client: int = Field(default=100, ge=0)


class BruteForceSettings(_Section):
    """Failed logins: a growing delay, then a temporary ban, per account and per address."""

    window: float = Field(default=900.0, gt=0)
    free_attempts: int = Field(default=3, ge=0)
    max_delay: float = Field(default=8.0, ge=0, le=60)
    ban_after: int = Field(default=10, ge=1)
    ban_duration: float = Field(default=900.0, gt=0)
    never_ban: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])

    _check_networks = field_validator("never_ban")(
        classmethod(lambda cls, values: _networks(values))
    )


class AuthSettings(_Section):
    """Who may use the CEMM through the gateway, and for how long a login lasts."""

    session_idle_timeout: float = Field(default=86400.0, ge=60)
    session_lifetime: float = Field(default=30 * 86400.0, ge=300)
    trusted_networks: list[str] = Field(default_factory=list)
    public_hostnames: list[str] = Field(default_factory=list)
    initial_admin: str = "admin"
    initial_admin_password: str = Field(default="", repr=False)
    initial_admin_password_file: str = ""
    audit_retention_days: int = Field(default=365, ge=1)
    bruteforce: BruteForceSettings = Field(default_factory=BruteForceSettings)

    _check_networks = field_validator("trusted_networks")(
        classmethod(lambda cls, values: _networks(values))
    )

    @field_validator("public_hostnames")
    @classmethod
    def _check_hostnames(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value or any(c in value for c in " /@\\\t") or "://" in value:
                raise ValueError(
                    f"'{value}' is not a host name; give the name (and port if not 80/443) "
                    "people type in the browser, without scheme or path"
                )
        return [value.lower() for value in values]


class OidcSettings(_Section):
    """Optional single sign-on with an OpenID Connect provider."""

    enabled: bool = False
    discovery_url: str = ""
    client_id: str = ""
    client_secret: str = Field(default="", repr=False)
    client_secret_file: str = ""
    redirect_uri: str = ""
    allowed_emails: list[str] = Field(default_factory=list)
    allowed_groups: list[str] = Field(default_factory=list)
    groups_claim: str = "groups"
    trust_unverified_email: bool = False
    label: str = "Sign in with single sign-on"


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"
    access: bool = False


class MetricsSettings(_Section):
    """``GET /metrics`` on the admin port: an admin session, or this bearer token."""

    scrape_token: str = Field(default="", repr=False)
    scrape_token_file: str = ""


class Settings(BaseSettings):
    """Every static setting of the gateway. Built by :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    data_dir: Path = Path("/data")
    reload_interval: float = Field(default=0.25, gt=0, le=5)
    upstream: UpstreamSettings = Field(default_factory=UpstreamSettings)
    listen: ListenSettings = Field(default_factory=ListenSettings)
    allowlist: AllowlistSettings = Field(default_factory=AllowlistSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    wireguard: WireguardSettings = Field(default_factory=WireguardSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    oidc: OidcSettings = Field(default_factory=OidcSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init arguments; the environment overrides it.
        return (env_settings, init_settings)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "gateway.db"

    @property
    def single_port_enabled(self) -> bool:
        """``[tls] single_port``; ``"auto"`` is on with the gateway's own TLS and behind a
        trusted reverse proxy - the two ways a browser comes over HTTPS, or through one
        forwarded port, where the CEMM page's socket to port 8090 would fail."""
        if self.tls.single_port == "auto":
            return self.tls.enabled or bool(self.allowlist.trusted_proxies)
        return bool(self.tls.single_port)


def _section_model(field: FieldInfo) -> type[BaseModel] | None:
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def setting_keys(model: type[BaseModel] = Settings, prefix: str = "") -> list[str]:
    """Every setting's dotted key (``tls.enabled``, ``auth.bruteforce.never_ban``), in order."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        section = _section_model(field)
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
        model = _section_model(field)
    if field is None:
        raise KeyError(key)
    return field


def example_value(key: str) -> Any:
    """A valid value for the setting ``key``: the curated example, else the default.

    For a section, the example of its first setting.
    """
    field = setting_field(key)
    section = _section_model(field)
    if section is not None:
        return example_value(f"{key}.{next(iter(section.model_fields))}")
    if key in _EXAMPLES:
        return _EXAMPLES[key]
    if field.annotation is bool:
        return True
    default = field.get_default(call_default_factory=True)
    return str(default) if isinstance(default, Path) else default


def _leaf_key(key: str) -> str:
    """``key`` itself for a setting, the first setting of the section for a section."""
    section = _section_model(setting_field(key))
    return _leaf_key(f"{key}.{next(iter(section.model_fields))}") if section else key


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(str(value))


def env_name(key: str) -> str:
    """The environment variable that sets ``key``: ``CEMM_GATEWAY_TLS__ENABLED``."""
    return ENV_PREFIX + key.replace(".", "__").upper()


def toml_example(key: str) -> str:
    """``[tls] enabled = true``: how the example for ``key`` is written in the file."""
    key = _leaf_key(key)
    section, _, name = key.rpartition(".")
    where = f"[{section}] " if section else ""
    return f"{where}{name} = {_toml_value(example_value(key))}"


def env_example(key: str) -> str:
    """``CEMM_GATEWAY_TLS__ENABLED=true``: the example for ``key`` as a shell assignment."""
    key = _leaf_key(key)
    value = example_value(key)
    if isinstance(value, str):
        text = value
    elif isinstance(value, list):
        text = json.dumps(value)
    else:
        text = _toml_value(value)
    return f"{env_name(key)}={shlex.quote(text)}"


def _accepted(annotation: Any) -> list[str]:
    """The values a union field accepts, as a person writes them: ``true``, ``"auto"``."""
    if get_origin(annotation) in (Union, UnionType):
        return [text for member in get_args(annotation) for text in _accepted(member)]
    if get_origin(annotation) is Literal:
        return [_toml_value(value) for value in get_args(annotation)]
    if annotation is bool:
        return ["true", "false"]
    names = {int: "a whole number", float: "a number", str: "a string"}
    return [names.get(annotation, getattr(annotation, "__name__", str(annotation)))]


def _resolve(loc: tuple[int | str, ...]) -> tuple[str, FieldInfo | None, tuple[int | str, ...]]:
    """Split an error location into the user's key and what pydantic added after it.

    ``("tls", "single_port", "literal['auto']")`` is ``tls.single_port`` and a union member;
    ``("auth", "trusted_networks", 0)`` is ``auth.trusted_networks`` and a list index.
    """
    model: type[BaseModel] | None = Settings
    names: list[str] = []
    field: FieldInfo | None = None
    for index, part in enumerate(loc):
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return ".".join(names), field, loc[index:]
        field = model.model_fields[part]
        names.append(part)
        model = _section_model(field)
    return ".".join(names), field, ()


def _environment() -> dict[str, str]:
    """The ``CEMM_GATEWAY_*`` variables that name settings, by dotted key (lower case)."""
    found: dict[str, str] = {}
    for name in os.environ:
        if name.upper().startswith(ENV_PREFIX) and name.upper() != CONFIG_ENV:
            found[name[len(ENV_PREFIX) :].lower().replace("__", ".")] = name
    return found


def _unknown_environment() -> list[str]:
    """A line for each ``CEMM_GATEWAY_*`` variable that names no setting and no section:
    a typo (one underscore instead of two) would otherwise leave a rule unset unnoticed."""
    keys = setting_keys()
    known = set(keys) | {
        ".".join(key.split(".")[:depth]) for key in keys for depth in range(1, key.count(".") + 1)
    }
    names = {env_name(key)[len(ENV_PREFIX) :]: env_name(key) for key in keys}
    lines = []
    for key, variable in sorted(_environment().items()):
        if key in known:
            continue
        close = difflib.get_close_matches(variable[len(ENV_PREFIX) :].upper(), names, n=1)
        hint = (
            f"; did you mean {names[close[0]]}?"
            if close
            else f"; settings are named like {env_name('upstream.host')}"
        )
        lines.append(f"  {variable}: not a setting of the gateway{hint}")
    return lines


def _from_environment(key: str, environment: dict[str, str]) -> str | None:
    """The variable that gave ``key`` its value, if the value came from the environment.

    Either the variable for the key itself, or one for an enclosing section whose JSON
    object holds the key.
    """
    if key in environment:
        return environment[key]
    parts = key.split(".")
    for length in range(len(parts) - 1, 0, -1):
        section = ".".join(parts[:length])
        if section not in environment:
            continue
        try:
            value: Any = json.loads(os.environ[environment[section]])
        except ValueError:
            return environment[section]
        for part in parts[length:]:
            if not isinstance(value, dict) or part not in value:
                break
            value = value[part]
        else:
            return environment[section]
    return None


def _message(item: Any) -> str:
    """Pydantic's message, without its prefix or the names of Python classes."""
    if item["type"] == "path_type":
        return "must be a path, as a string"
    return str(item["msg"]).removeprefix("Value error, ")


def _error_line(key: str, message: str, known: bool, environment: dict[str, str]) -> str:
    variable = _from_environment(key, environment)
    name = f"{variable} ({key})" if variable else key
    if not known:
        return f"  {name or '(top level)'}: {message}"
    example = env_example(key) if variable else toml_example(key)
    # A validator's own example (of one list entry, say) is left out when this one shows it.
    message, _, own = message.partition("; example: ")
    if own and own not in example:
        message += f"; example: {own}"
    return f"  {name}: {message}; example: {example}"


def _format_error(error: ValidationError, source: str) -> str:
    environment = _environment()
    # Errors by key, in order: a union reports once per member, a list once per item.
    grouped: dict[str, list[tuple[dict[str, Any], FieldInfo | None, tuple[int | str, ...]]]] = {}
    unknown: list[str] = []
    for item in error.errors():
        if item["type"] == "extra_forbidden":
            unknown.append(".".join(str(part) for part in item["loc"]))
            continue
        key, field, rest = _resolve(item["loc"])
        grouped.setdefault(key, []).append((dict(item), field, rest))
    lines = [f"invalid configuration ({source}):"]
    for key, items in grouped.items():
        field = items[0][1]
        if field is not None and any(rest and isinstance(rest[0], str) for _, _, rest in items):
            # A union: each member's complaint alone is misleading; say what is accepted.
            *others, last = _accepted(field.annotation)
            message = f"must be {', '.join(others)} or {last}" if others else f"must be {last}"
        elif field is not None and _section_model(field) is not None and not items[0][2]:
            message = f"must be a table of settings, the [{key}] section"
        else:
            messages = [_message(item) for item, _, _ in items]
            message = "; ".join(dict.fromkeys(messages))
        lines.append(_error_line(key, message, field is not None, environment))
    for key in unknown:
        message = "is not a known setting (see config/gateway.toml for every key)"
        lines.append(_error_line(key, message, False, environment))
    return "\n".join(lines)


def _is_complex(field: FieldInfo) -> bool:
    """Whether the environment gives this setting as JSON (a list, or a whole section)."""
    return _section_model(field) is not None or get_origin(field.annotation) is list


def _environment_json_errors() -> list[str]:
    """Lines for ``CEMM_GATEWAY_*`` variables whose value must be JSON and is not."""
    lines = []
    for key, variable in _environment().items():
        try:
            field = setting_field(key)
        except KeyError:
            continue
        if not _is_complex(field):
            continue
        try:
            json.loads(os.environ[variable])
        except ValueError:
            kind = "a JSON object" if _section_model(field) else "a JSON list, with quoted items"
            lines.append(f"  {variable} ({key}): must be {kind}; example: {env_example(key)}")
    return lines


def load_settings(path: Path | str | None = None) -> Settings:
    """Read the TOML file (if any), apply environment overrides, validate.

    Raises :class:`SettingsError` with an actionable message.
    """
    if path is None and os.environ.get(CONFIG_ENV):
        path = os.environ[CONFIG_ENV]
    data: dict[str, Any] = {}
    source = "defaults and environment"
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            with path.open("rb") as file:
                data = tomllib.load(file)
        except FileNotFoundError:
            raise SettingsError(f"configuration file {path} does not exist") from None
        except tomllib.TOMLDecodeError as error:
            raise SettingsError(f"configuration file {path} is not valid TOML: {error}") from None
        except OSError as error:
            raise SettingsError(f"cannot read configuration file {path}: {error}") from None
    unknown = _unknown_environment()
    if unknown:
        raise SettingsError("\n".join(["invalid configuration (environment):", *unknown]))
    try:
        settings = Settings(**data)
    except ValidationError as error:
        raise SettingsError(_format_error(error, source)) from None
    except PydanticSettingsError as error:
        # The environment source could not decode a value: a list or section that is not JSON.
        lines = _environment_json_errors() or [f"  {error}"]
        raise SettingsError("\n".join(["invalid configuration (environment):", *lines])) from None
    return settings


def check_tls(settings: Settings) -> None:
    """A certificate needs its key and the other way round."""
    tls = settings.tls
    if bool(tls.cert) != bool(tls.key):
        raise SettingsError(
            "invalid configuration: [tls] cert and key go together; give both paths, or "
            'neither for a self-signed certificate. example: cert = "/data/tls/fullchain.pem", '
            'key = "/data/tls/privkey.pem"'
        )


def check_wireguard(settings: Settings) -> None:
    wireguard = settings.wireguard
    if wireguard.enabled and not wireguard.endpoint:
        raise SettingsError(
            "invalid configuration: [wireguard] enabled = true needs endpoint, the address "
            'phones dial; example: [wireguard] endpoint = "home.example.org:51820"'
        )


def check_oidc(settings: Settings) -> None:
    """OIDC, when enabled, needs its provider and client; say which key is missing."""
    oidc = settings.oidc
    if not oidc.enabled:
        return
    missing = [
        key
        for key, value in (
            ("discovery_url", oidc.discovery_url),
            ("client_id", oidc.client_id),
            ("client_secret or client_secret_file", oidc.client_secret or oidc.client_secret_file),
            ("redirect_uri", oidc.redirect_uri),
        )
        if not value
    ]
    if missing:
        raise SettingsError(
            f"invalid configuration: [oidc] enabled = true needs {', '.join(missing)}; example: "
            '[oidc] discovery_url = "https://sso.example.org/.well-known/openid-configuration"'
        )


def require_upstream(settings: Settings) -> None:
    """Refuse to run a gateway that does not know where, or which, the CEMM is."""
    upstream = settings.upstream
    if not upstream.host and not upstream.mac:
        raise SettingsError(
            "invalid configuration: upstream.host is not set, nor upstream.mac; the "
            "gateway needs the CEMM's address or its MAC. example: "
            '[upstream] host = "192.168.2.34" (or CEMM_GATEWAY_UPSTREAM__HOST=192.168.2.34), or '
            '[upstream] mac = "80:1F:12:47:06:B0" to follow the CEMM across DHCP changes '
            "(the MAC is shown in the CEMM under Instellingen > Systeem)"
        )
    if upstream.probe_subnet and not upstream.mac:
        raise SettingsError(
            "invalid configuration: upstream.probe_subnet is only used to find the CEMM by "
            'its MAC; set [upstream] mac = "80:1F:12:47:06:B0" as well, or remove probe_subnet'
        )
