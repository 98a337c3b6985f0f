"""The settings themselves: every section and key, its default and what it accepts.

A section is a frozen pydantic model that forbids unknown keys; a key's validator refuses a
value with a message a person can act on (an example of a good value is added by
:mod:`gateway.settings.loading`, which names the key). :class:`Settings` is the whole, with
the environment taking precedence over the file (see :mod:`gateway.settings`).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.policy.allowlist import AllowlistEntryError, parse_network
from gateway.settings.acme import AcmeSettings
from gateway.settings.backup import BackupSettings
from gateway.settings.notify import NotifySettings
from gateway.settings.roles import RolesSettings
from gateway.settings.ui import UiSettings

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
    require_second_factor: Literal["none", "admins", "all"] = "none"
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
    acme: AcmeSettings = Field(default_factory=AcmeSettings)
    wireguard: WireguardSettings = Field(default_factory=WireguardSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    oidc: OidcSettings = Field(default_factory=OidcSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    roles: RolesSettings = Field(default_factory=RolesSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    # The file these settings were read from (gateway.settings.runtime names it in locks).
    _config_file: Path | None = PrivateAttr(default=None)
    ui: UiSettings = Field(default_factory=UiSettings)

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
    def config_file(self) -> Path | None:
        """The configuration file these settings were read from; None without one."""
        return self._config_file

    def remember_config_file(self, path: Path) -> None:
        self._config_file = path

    @property
    def database_path(self) -> Path:
        return self.data_dir / "gateway.db"

    @property
    def backup_directory(self) -> Path:
        """``[backup] directory``, by default ``<data_dir>/backups``."""
        return Path(self.backup.directory) if self.backup.directory else self.data_dir / "backups"

    @property
    def single_port_enabled(self) -> bool:
        """``[tls] single_port``; ``"auto"`` is on with the gateway's own TLS and behind a
        trusted reverse proxy - the two ways a browser comes over HTTPS, or through one
        forwarded port, where the CEMM page's socket to port 8090 would fail."""
        if self.tls.single_port == "auto":
            return self.tls.enabled or bool(self.allowlist.trusted_proxies)
        return bool(self.tls.single_port)
