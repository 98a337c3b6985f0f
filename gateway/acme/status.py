"""What is known about the ACME certificate, as typed data for the dashboard and the CLI."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gateway.acme.storage import Attempt


@dataclass(frozen=True)
class CertificateStatus:
    """The certificate in place and the last order."""

    issued: bool
    """From the authority; False for the self-signed stand-in."""
    issuer: str
    names: tuple[str, ...]
    not_after: dt.datetime | None
    renew_at: dt.datetime | None
    last_attempt: Attempt | None
