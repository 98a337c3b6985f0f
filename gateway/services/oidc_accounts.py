"""Which local account a person vouched for by the OIDC provider logs in as.

The rule, in order (:func:`account_for`):

1. A user already linked to the identity (issuer and subject) logs in as that user -
   unless the account is disabled (then nobody).
2. Otherwise the identity's e-mail counts only when trusted
   (:func:`gateway.auth.oidc.trusted_email`: verified by the provider, or the provider is
   configured as trusted). :func:`gateway.auth.oidc.admission` decides with it:
   ``linked`` - a local user with that address (any case) logs in, unless disabled;
   ``create`` - the address or a group is allowed by ``[oidc] allowed_emails`` /
   ``allowed_groups``: a new ``user`` account without a password is created, linked to
   the identity and named after it (:func:`local_name`, with ``-2`` ... ``-99`` appended
   when the name is taken; beyond that, nobody); ``refuse`` - nobody.

:func:`sign_in` applies the rule and, when it finds nobody, records the refusal in the
audit log and raises :class:`~gateway.services.errors.Forbidden`.
"""

from __future__ import annotations

import re
import sqlite3

from gateway.auth.oidc import OidcConfig, OidcIdentity, admission, trusted_email
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.i18n import N_
from gateway.services import login, users
from gateway.services.errors import Forbidden
from gateway.services.users import User

__all__ = ["NOT_ADMITTED", "account_for", "local_name", "sign_in"]

NOT_ADMITTED = "not admitted by [oidc] allowed_emails / allowed_groups or no linked user"
_NAME_SUFFIXES = ("", *(f"-{n}" for n in range(2, 100)))


def local_name(identity: OidcIdentity, email: str) -> str:
    """A user name for a new account: the provider's preferred user name, else the
    address's local part, reduced to the characters a user name may hold."""
    wanted = identity.preferred_username or email.split("@", 1)[0] or "user"
    return re.sub(r"[^A-Za-z0-9._@-]", "", wanted).lstrip("._@-")[:48] or "user"


def account_for(
    conn: sqlite3.Connection, identity: OidcIdentity, config: OidcConfig
) -> User | None:
    """The local user this identity logs in as (created if the configuration admits it),
    or None when nobody."""
    known = users.get_user_by_oidc(conn, identity.issuer, identity.subject)
    if known is not None:
        return None if known.disabled else known
    email = trusted_email(identity, config)
    linked = users.get_user_by_email(conn, email) if email else None
    decision = admission(identity, linked_user_exists=linked is not None, config=config)
    if decision == "linked" and linked is not None:
        return None if linked.disabled else linked
    if decision != "create" or email is None:
        return None
    base = local_name(identity, email)
    for suffix in _NAME_SUFFIXES:
        if users.get_user(conn, base + suffix) is None:
            return users.add_user(
                conn,
                base + suffix,
                role="user",
                password=None,
                actor="oidc",
                email=email,
                oidc=(identity.issuer, identity.subject),
            )
    return None


def sign_in(
    conn: sqlite3.Connection,
    identity: OidcIdentity,
    config: OidcConfig,
    *,
    client_address: str | None,
    user_agent: str | None,
    clock: Clock = SYSTEM_CLOCK,
) -> User:
    """The account to start a session for; Forbidden (recorded as ``login.failure``)
    when the identity is not admitted."""
    user = account_for(conn, identity, config)
    if user is None:
        login.record_failure(
            conn,
            identity.email or identity.subject,
            reason=NOT_ADMITTED,
            client_address=client_address,
            user_agent=user_agent,
            clock=clock,
        )
        raise Forbidden(
            N_(
                "Your account at the sign-in provider is not allowed to use this gateway. "
                "Ask the gateway's owner to add you."
            )
        )
    return user
