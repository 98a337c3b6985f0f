"""One ACME order, start to finish, with Certbot's ``acme`` library (no protocol by hand).

:func:`order_certificate` runs in a worker thread (the library is synchronous):

1. the account: the stored key, registered with the authority on first use (with the
   ``[acme] email`` and the terms agreed) or found again by its key;
2. a new key and a CSR for ``[acme] domains``, and a new order;
3. each authorization's challenge of the configured type:
   - ``http-01``: the token and key authorization go on the :class:`ChallengeBoard`, which
     opens the proxy's narrow window (:mod:`gateway.policy.acme_challenge`) for exactly
     as long as the order is pending - the tokens leave the board when it ends, however
     it ends;
   - ``dns-01`` with ``[acme] dns_hook``: the hook runs as ``hook add <name> <value>``
     before and ``hook remove <name> <value>`` after (``_acme-challenge.<domain>``, the
     TXT value); with ``[acme.dns] provider`` the provider's API does the same
     (:mod:`gateway.acme.dns_provider`), and the authority is asked to look only
     ``[acme.dns] propagation_seconds`` after the last record went up;
4. the order is finalized and the certificate chain fetched; the key and chain replace
   the files the TLS layer serves (:class:`AcmeStorage`).

Any failure raises :class:`AcmeError` with a message a person can act on; the files in
place are untouched, so the previous certificate keeps serving.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import josepy as jose
import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives import serialization

from gateway import version
from gateway.acme.board import ChallengeBoard
from gateway.acme.dns_provider import provider_hook
from gateway.acme.errors import AcmeError, Hook
from gateway.acme.storage import AcmeStorage, new_key_pem
from gateway.settings.acme import AcmeSettings
from gateway.system.commands import CommandError, run_sync

logger = logging.getLogger("cemm_gateway.acme")

ORDER_TIMEOUT = 180.0
HOOK_TIMEOUT = 120.0


@dataclass(frozen=True)
class Issued:
    names: tuple[str, ...]
    not_after: dt.datetime


def _account_key(storage: AcmeStorage) -> jose.JWKEC:
    key = serialization.load_pem_private_key(storage.account_key_pem(), password=None)
    return jose.JWKEC(key=key)


def _connect(settings: AcmeSettings, storage: AcmeStorage) -> client.ClientV2:
    network = client.ClientNetwork(
        _account_key(storage),
        alg=jose.ES256,
        user_agent=f"cemm-gateway/{version.version()}",
        # requests takes a CA bundle's path where the library passes its ``verify``.
        verify_ssl=settings.ca_bundle or True,  # type: ignore[arg-type]
    )
    directory = client.ClientV2.get_directory(settings.directory, network)
    acme = client.ClientV2(directory, net=network)
    registration = messages.NewRegistration.from_data(
        email=settings.email or None, terms_of_service_agreed=True
    )
    try:
        acme.net.account = acme.new_account(registration)
    except errors.ConflictError as existing:
        # The key is registered already: the authority says where its account is.
        found = messages.RegistrationResource(uri=existing.location, body=messages.Registration())
        acme.net.account = found
        acme.net.account = acme.query_registration(found)
    return acme


__all__ = ["AcmeError", "Issued", "order_certificate", "run_hook"]


def run_hook(path: str) -> Hook:
    def hook(action: str, name: str, value: str) -> None:
        try:
            run_sync([path, action, name, value], timeout=HOOK_TIMEOUT)
        except CommandError as error:
            raise AcmeError(f"the DNS hook {path} failed to {action} {name}: {error}") from None

    return hook


def _dns_hook(settings: AcmeSettings) -> Hook | None:
    if settings.dns_hook:
        return run_hook(settings.dns_hook)
    if settings.dns.provider:
        return provider_hook(settings.dns)
    return None


@contextmanager
def _challenges(
    acme: client.ClientV2,
    order: messages.OrderResource,
    settings: AcmeSettings,
    board: ChallengeBoard,
) -> Iterator[None]:
    """Offer every authorization's challenge; take the answers down afterwards."""
    key = acme.net.key
    kind = challenges.HTTP01 if settings.challenge == "http-01" else challenges.DNS01
    hook = _dns_hook(settings) if kind is challenges.DNS01 else None
    tokens: list[str] = []
    records: list[tuple[str, str]] = []
    answers: list[tuple[messages.ChallengeBody, Any]] = []
    try:
        for authorization in order.authorizations:
            domain = authorization.body.identifier.value
            found = [c for c in authorization.body.challenges if isinstance(c.chall, kind)]
            if authorization.body.status == messages.STATUS_VALID:
                continue
            if not found:
                raise AcmeError(f"the authority offers no {settings.challenge} for {domain}")
            challenge = found[0]
            response, validation = challenge.response_and_validation(key)
            if kind is challenges.HTTP01:
                token = challenge.chall.encode("token")
                board.add(token, validation)
                tokens.append(token)
            else:
                if hook is None:
                    raise AcmeError("dns-01 needs [acme] dns_hook or [acme.dns] provider")
                name = challenge.chall.validation_domain_name(domain)
                hook("add", name, validation)
                records.append((name, validation))
            answers.append((challenge, response))
        if records and settings.dns.provider and settings.dns.propagation_seconds:
            # A provider's name servers take a while to serve a new record everywhere.
            time.sleep(settings.dns.propagation_seconds)
        for challenge, response in answers:
            acme.answer_challenge(challenge, response)
        yield
    finally:
        for token in tokens:
            board.remove(token)
        for name, value in records:
            try:
                if hook is not None:
                    hook("remove", name, value)
            except AcmeError as error:
                logger.warning("%s", error)


def order_certificate(
    settings: AcmeSettings, storage: AcmeStorage, board: ChallengeBoard
) -> Issued:
    """Order a certificate for ``settings.domains`` and put it in place (see above)."""
    try:
        return _order(settings, storage, board)
    except AcmeError:
        raise
    except errors.ValidationError as error:
        problems = [
            f"{a.body.identifier.value}: {c.error.detail if c.error else c.status}"
            for a in error.failed_authzrs
            for c in a.body.challenges
            if c.error is not None
        ]
        raise AcmeError("the authority could not validate " + "; ".join(problems)) from None
    except errors.TimeoutError:
        raise AcmeError(
            f"the order was not finished within {ORDER_TIMEOUT:g} s; "
            "is port 80 forwarded to the gateway?"
        ) from None
    except messages.Error as error:
        raise AcmeError(f"the authority refused: {error.detail or error.typ}") from None
    except requests.RequestException as error:
        raise AcmeError(f"cannot reach the ACME directory {settings.directory}: {error}") from None
    except errors.Error as error:
        raise AcmeError(f"the ACME order failed: {error}") from None


def _order(settings: AcmeSettings, storage: AcmeStorage, board: ChallengeBoard) -> Issued:
    acme = _connect(settings, storage)
    key_pem = new_key_pem()
    csr = crypto_util.make_csr(key_pem, list(settings.domains))
    order = acme.new_order(csr)
    deadline = dt.datetime.now() + dt.timedelta(seconds=ORDER_TIMEOUT)
    with _challenges(acme, order, settings, board):
        order = acme.poll_authorizations(order, deadline)
    order = acme.finalize_order(order, deadline)
    fullchain = order.fullchain_pem
    if not fullchain:
        raise AcmeError("the authority sent no certificate")
    storage.install(key_pem, fullchain.encode())
    certificate = storage.certificate()
    assert certificate is not None
    logger.info(
        "installed the certificate for %s from %s, valid until %s",
        ", ".join(settings.domains),
        certificate.issuer.rfc4514_string(),
        certificate.not_valid_after_utc.isoformat(timespec="minutes"),
    )
    return Issued(tuple(settings.domains), certificate.not_valid_after_utc)
