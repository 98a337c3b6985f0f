"""``[acme]``: a certificate from an ACME authority (Let's Encrypt by default), renewed by
the gateway itself. Needs ``[tls] enabled`` and replaces ``[tls] cert``/``key``; the
rules across sections are in :mod:`gateway.settings.checks`."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"

# A DNS name as a CA issues it: labels of letters, digits and hyphens; a leading "*." for
# a wildcard (DNS-01 only, checked across keys).
_DOMAIN_RE = re.compile(
    r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?"
)


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
