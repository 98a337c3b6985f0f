"""Logging in, as use cases: check a password, check a second factor, start a session,
record a failed sign-in.

Each function runs on the database thread with plain arguments (a connection, the
settings it needs, a clock) and knows nothing of HTTP. The checks return None for a
wrong secret instead of raising: they are the ``verify`` step of the one gate
(:mod:`gateway.portal.guesses`, deciding in :mod:`gateway.services.bans`), which reserves
every guess before the secret is looked at and settles it as a failure when the check
returns None. Never call a check outside that gate, or a guesser gets free attempts.

- :func:`check_password`: the user for a right password of a usable account, else None;
  takes the same time for unknown names (:func:`gateway.services.users.authenticate`).
- :func:`check_second_factor`: ``"totp"`` or ``"recovery"`` (a recovery code is used up),
  else None; a TOTP time step is never accepted twice.
- :func:`user_for_second_step`: the account a waiting second-factor step belongs to, still
  usable at the moment the step completes; :class:`~gateway.services.errors.Forbidden`
  when it was disabled or removed meanwhile.
- :func:`start_session`: a new session (always a new token: a session id planted before
  login is never adopted), audited as ``login`` with its ``method``, and the account's
  failure count cleared - a completed login passed every factor.
- :func:`record_failure`: a ``login.failure`` entry in the audit log, in its own
  transaction, for failures that no guess settles (an OIDC sign-in refused).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Literal

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.i18n import N_
from gateway.policy.credentials import SessionInfo
from gateway.services import audit, bans, sessions, users
from gateway.services.errors import Forbidden
from gateway.services.users import User
from gateway.store.db import transaction

__all__ = [
    "NewSession",
    "check_password",
    "check_second_factor",
    "record_failure",
    "start_session",
    "user_for_second_step",
]

SecondFactor = Literal["totp", "recovery"]


@dataclass(frozen=True)
class NewSession:
    """A session just started: ``token`` goes into the cookie, only its hash is stored."""

    token: str
    info: SessionInfo


def check_password(conn: sqlite3.Connection, name: str, password: str) -> User | None:
    """The user whose password this is, if the account is usable; else None."""
    return users.authenticate(conn, name, password)


def check_second_factor(
    conn: sqlite3.Connection, user_id: int, code: str, *, clock: Clock = SYSTEM_CLOCK
) -> SecondFactor | None:
    """``"totp"`` or ``"recovery"`` for a right code of the account; else None."""
    return users.verify_second_factor(conn, user_id, code, clock=clock)


def user_for_second_step(conn: sqlite3.Connection, user_id: int) -> User:
    """The account of a completed second-factor step; Forbidden if no longer usable."""
    user = users.get_user_by_id(conn, user_id)
    if user is None or user.disabled:
        raise Forbidden(N_("Account disabled."))
    return user


def start_session(
    conn: sqlite3.Connection,
    user: User,
    *,
    lifetime: float,
    client_address: str | None,
    user_agent: str | None,
    method: str,
    clock: Clock = SYSTEM_CLOCK,
) -> NewSession:
    """A new session for ``user`` after every factor passed (``method`` names them:
    ``password``, ``password+totp``, ``password+recovery``, ``api``, ``oidc``)."""
    token, info = sessions.create_session(
        conn,
        user,
        lifetime=lifetime,
        client_address=client_address,
        user_agent=user_agent,
        method=method,
        clock=clock,
    )
    bans.record_success(conn, user.name)
    return NewSession(token, info)


def record_failure(
    conn: sqlite3.Connection,
    actor: str,
    *,
    reason: str,
    client_address: str | None,
    user_agent: str | None,
    clock: Clock = SYSTEM_CLOCK,
    **detail: Any,
) -> None:
    """Audit a sign-in that failed for ``reason`` (``actor``: who it claimed to be)."""
    with transaction(conn):
        audit.record(
            conn,
            actor,
            "login.failure",
            client_address=client_address,
            user_agent=user_agent,
            clock=clock,
            reason=reason,
            **detail,
        )
