"""``[acme]``: a certificate from an ACME authority (Let's Encrypt by default), renewed by
the gateway itself. Needs ``[tls] enabled`` and replaces ``[tls] cert``/``key``; the
rules across sections are in :mod:`gateway.settings.checks`.

``[acme.dns]``: DNS-01 through a DNS provider's API, driven by the ``dns-lexicon``
library: ``provider`` names one of lexicon's providers (``powerdns``, ``desec``,
``duckdns``, ``cloudflare`` ...); every other key of the table is that provider's own
option, spelled as lexicon spells it (``auth_token``, ``pdns_server``), and ``<option>_file``
reads the option's value from a file instead (a secret; read at each order, whitespace
around it dropped). Which options a provider knows is checked by
:func:`gateway.settings.checks.check_acme`, which asks the library.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"

# A DNS name as a CA issues it: labels of letters, digits and hyphens; a leading "*." for
# a wildcard (DNS-01 only, checked across keys).
_DOMAIN_RE = re.compile(
    r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?"
)


# A provider option's name as lexicon spells it (``auth_token``, ``pdns_server_id``).
_OPTION_RE = re.compile(r"[a-z][a-z0-9_]*")


class AcmeDnsSettings(BaseModel):
    """DNS-01 through a DNS provider's API (``dns-lexicon``)."""

    # Any other key is a provider option; kept in ``model_extra``, never shown by repr.
    model_config = ConfigDict(extra="allow", frozen=True)

    provider: str = ""
    """A ``dns-lexicon`` provider's name, e.g. ``"powerdns"``, ``"desec"``, ``"duckdns"``."""
    propagation_seconds: float = Field(default=30.0, ge=0, le=3600)
    """How long to wait after publishing the TXT records before the authority looks."""

    @model_validator(mode="after")
    def _check_options(self) -> AcmeDnsSettings:
        for name, value in (self.model_extra or {}).items():
            if not _OPTION_RE.fullmatch(name):
                raise ValueError(
                    f"[acme.dns] {name}: a provider option is named in lower case with "
                    'underscores, as dns-lexicon spells it; example: auth_token = "..."'
                )
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise ValueError(
                    f"[acme.dns] {name}: a provider option is a string or a number; "
                    f'example: {name} = "..."'
                )
        return self

    def __repr_args__(self) -> list[tuple[str | None, object]]:
        # Provider options often are secrets (tokens, passwords): names only.
        return [
            ("provider", self.provider),
            ("propagation_seconds", self.propagation_seconds),
            ("options", sorted(self.model_extra or {})),
        ]

    @property
    def options(self) -> dict[str, str | int | float]:
        """The provider's options as written (``<option>_file`` keys not read yet)."""
        return dict(self.model_extra or {})


class AcmeSettings(BaseModel):
    """Certificates from an ACME authority."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    email: str = ""
    domains: list[str] = Field(default_factory=list)
    directory_url: str = ""
    """Empty: Let's Encrypt (production, or staging with ``staging = true``)."""
    staging: bool = False
    challenge: Literal["http-01", "dns-01"] = "http-01"
    ca_bundle: str = ""
    """A PEM file of CAs to trust for the directory (a private or test ACME server)."""
    dns_hook: str = ""
    """For dns-01: a program run as ``hook add|remove <name> <value>`` to publish the TXT
    record ``<name>`` (``_acme-challenge.<domain>``) with ``<value>``, and to remove it."""
    dns: AcmeDnsSettings = Field(default_factory=AcmeDnsSettings)
    """For dns-01 without a hook: ``[acme.dns]``, a DNS provider's API (see above)."""

    @field_validator("domains")
    @classmethod
    def _check_domains(cls, values: list[str]) -> list[str]:
        cleaned = []
        for value in values:
            name = value.strip().lower().rstrip(".")
            if len(name) > 253 or not _DOMAIN_RE.fullmatch(name):
                raise ValueError(
                    f"'{value}' is not a DNS name a certificate can carry; "
                    'example: ["cemm.example.org"]'
                )
            cleaned.append(name)
        return list(dict.fromkeys(cleaned))

    @field_validator("directory_url")
    @classmethod
    def _check_directory(cls, value: str) -> str:
        if value and urlsplit(value).scheme != "https":
            raise ValueError(
                f'must be an https:// URL of an ACME directory; example: "{LETS_ENCRYPT_STAGING}"'
            )
        return value

    @property
    def directory(self) -> str:
        """The directory the gateway orders from."""
        if self.directory_url:
            return self.directory_url
        return LETS_ENCRYPT_STAGING if self.staging else LETS_ENCRYPT
