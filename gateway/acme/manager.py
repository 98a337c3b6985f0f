"""The gateway's ACME certificate over its lifetime: the stand-in until the first order,
renewal at two thirds of the lifetime, retry with backoff, and the status people read.

- At start, with no certificate in ``<data dir>/acme/`` yet, a self-signed stand-in for
  the domains is put there, so HTTPS works from the first second and the TLS layer has
  one pair of files to watch for good.
- An order is due when the certificate in place is the stand-in, does not carry every
  configured domain, or has passed two thirds of its lifetime.
- A failed order leaves the certificate in place serving and is retried after
  ``RETRY_FIRST`` seconds, doubling up to ``RETRY_MAX``; the error is kept for the status.
- ``cemm-gateway cert renew`` leaves a request in the data directory; the loop looks
  for it every ``REQUEST_POLL`` seconds and orders at once (backoff or not).
- A failed order is audited (``certificate.renewal_failed``, actor ``system``, with the
  error in plain words and challenge tokens redacted), which makes it a notification
  (:mod:`gateway.notify.events`); every failed attempt is one entry, so the backoff bounds
  how often the owner hears of it.
- The order runs in a worker thread (the ``acme`` library is synchronous); the challenge
  board it fills is read by the proxy on the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from cryptography import x509

from gateway.acme.board import ChallengeBoard
from gateway.acme.errors import AcmeError, redacted
from gateway.acme.status import CertificateStatus
from gateway.acme.storage import AcmeStorage, Attempt, renewal_due
from gateway.settings.acme import AcmeSettings
from gateway.tls.certificates import make_self_signed

logger = logging.getLogger("cemm_gateway.acme")


def order_certificate(settings: AcmeSettings, storage: AcmeStorage, board: ChallengeBoard) -> None:
    """One order (:func:`gateway.acme.client.order_certificate`). The ACME library is
    imported with the first order: a gateway without ACME never carries it (~5 MB)."""
    from gateway.acme.client import order_certificate as order

    order(settings, storage, board)


RETRY_FIRST = 300.0
RETRY_MAX = 6 * 3600.0
EXPIRY_WARNING = dt.timedelta(days=14)
# How often the renewal loop looks for a request of ``cemm-gateway cert renew``.
REQUEST_POLL = 2.0
AUDIT_ACTOR = "system"

# ``Recorder.record_audit``: (actor, event, **detail).
RecordAudit = Callable[..., None]


def _names(certificate: x509.Certificate) -> tuple[str, ...]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    return tuple(extension.value.get_values_for_type(x509.DNSName))


class AcmeManager:
    def __init__(self, settings: AcmeSettings, storage: AcmeStorage) -> None:
        self.settings = settings
        self.storage = storage
        self.board = ChallengeBoard()
        self._lock = asyncio.Lock()
        self._failures = 0
        # Set by the gateway once its recorder runs; failed orders are audited through it.
        self.record_audit: RecordAudit | None = None

    def ensure_standin(self) -> None:
        """A self-signed pair in the ACME files, unless a certificate is there already."""
        if self.storage.cert.exists() and self.storage.key.exists():
            return
        self.storage.prepare()
        make_self_signed(
            self.storage.cert,
            self.storage.key,
            hostnames=[name for name in self.settings.domains if not name.startswith("*.")]
            or ["cemm-gateway"],
            addresses=[],
        )

    def status(self) -> CertificateStatus:
        certificate = self.storage.certificate()
        issued = self.storage.issued()
        return CertificateStatus(
            issued=issued,
            issuer=certificate.issuer.rfc4514_string() if certificate is not None else "",
            names=_names(certificate) if certificate is not None else (),
            not_after=certificate.not_valid_after_utc if certificate is not None else None,
            renew_at=renewal_due(certificate) if certificate is not None and issued else None,
            last_attempt=self.storage.last_attempt(),
        )

    def due(self, now: dt.datetime) -> bool:
        certificate = self.storage.certificate()
        if certificate is None or not self.storage.issued():
            return True
        if not set(self.settings.domains) <= set(_names(certificate)):
            return True
        return now >= renewal_due(certificate)

    async def renew(self) -> None:
        """Order now (one order at a time); raises :class:`AcmeError` when it fails."""
        async with self._lock:
            try:
                await asyncio.to_thread(order_certificate, self.settings, self.storage, self.board)
            except AcmeError as error:
                self._failed(str(error))
                raise
            except Exception as error:  # the status says it; the loop carries on
                logger.exception("the ACME order failed unexpectedly")
                self._failed(f"unexpected error: {error}")
                raise AcmeError(f"unexpected error: {error}") from error
            self.storage.record(Attempt(time.time(), True))

    def _failed(self, error: str) -> None:
        """Keep the error for the status and audit it (tokens redacted in both)."""
        error = redacted(error)
        self.storage.record(Attempt(time.time(), False, error))
        if self.record_audit is not None:
            detail: dict[str, Any] = {"domains": ", ".join(self.settings.domains), "error": error}
            self.record_audit(AUDIT_ACTOR, "certificate.renewal_failed", **detail)

    def next_wait(self, now: dt.datetime) -> float:
        """Seconds until the next look: the renewal moment, or the retry after failures."""
        if self._failures:
            return min(RETRY_FIRST * 2 ** (self._failures - 1), RETRY_MAX)
        certificate = self.storage.certificate()
        if certificate is None or self.due(now):
            return 0.0
        return min(max((renewal_due(certificate) - now).total_seconds(), 1.0), RETRY_MAX)

    async def run(self) -> None:
        """Renew when due or asked (``cemm-gateway cert renew``), retry with backoff -
        until cancelled."""
        asked = False
        while True:
            now = dt.datetime.now(dt.UTC)
            if asked or self.due(now):
                try:
                    await self.renew()
                except AcmeError as error:
                    self._failures += 1
                    logger.error(
                        "the certificate order failed (the current certificate keeps "
                        "serving; next try in %.0f s): %s",
                        self.next_wait(now),
                        error,
                    )
                else:
                    self._failures = 0
            self._warn_expiry(now)
            asked = await self._wait(self.next_wait(dt.datetime.now(dt.UTC)))

    async def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds``, or less when a renewal is asked for (then True)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.storage.take_renewal_request():
                return True
            await asyncio.sleep(min(left, REQUEST_POLL))
        return self.storage.take_renewal_request()

    def _warn_expiry(self, now: dt.datetime) -> None:
        certificate = self.storage.certificate()
        if certificate is not None and self.storage.issued():
            left = certificate.not_valid_after_utc - now
            if left < EXPIRY_WARNING:
                logger.warning(
                    "the certificate for %s expires in %d days and has not been renewed",
                    ", ".join(self.settings.domains),
                    left.days,
                )
