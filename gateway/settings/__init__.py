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
and this package in step.

The package: :mod:`.model` (the sections and keys, their defaults and validators),
:mod:`.keys` (settings by dotted key, and a valid example of each), :mod:`.loading` (the
file and the environment, and the error messages), :mod:`.checks` (rules across keys,
checked before the gateway starts and by ``cemm-gateway check``).
"""

from gateway.settings.checks import (
    check_acme,
    check_oidc,
    check_startup,
    check_tls,
    check_wireguard,
    require_upstream,
)
from gateway.settings.keys import (
    env_example,
    env_name,
    example_value,
    setting_field,
    setting_keys,
    toml_example,
)
from gateway.settings.loading import environment_variables, load_settings
from gateway.settings.model import (
    CONFIG_ENV,
    ENV_PREFIX,
    MAX_PROBE_ADDRESSES,
    PRIVATE_NETWORKS,
    AllowlistSettings,
    AuthSettings,
    BruteForceSettings,
    LimitsSettings,
    ListenSettings,
    LogSettings,
    MetricsSettings,
    OidcSettings,
    Settings,
    SettingsError,
    TlsSettings,
    UpstreamSettings,
    WireguardSettings,
)

__all__ = [
    "CONFIG_ENV",
    "ENV_PREFIX",
    "MAX_PROBE_ADDRESSES",
    "PRIVATE_NETWORKS",
    "AllowlistSettings",
    "AuthSettings",
    "BruteForceSettings",
    "LimitsSettings",
    "ListenSettings",
    "LogSettings",
    "MetricsSettings",
    "OidcSettings",
    "Settings",
    "SettingsError",
    "TlsSettings",
    "UpstreamSettings",
    "WireguardSettings",
    "check_acme",
    "check_oidc",
    "check_startup",
    "check_tls",
    "check_wireguard",
    "env_example",
    "env_name",
    "environment_variables",
    "example_value",
    "load_settings",
    "require_upstream",
    "setting_field",
    "setting_keys",
    "toml_example",
]
