"""API tokens for clients that are not browsers (Home Assistant, scripts).

A token is ``cgw_<id>_<secret>``: the id finds the row, the secret's SHA-256 is what is
stored (a 256-bit random secret needs no slow hash), and the full token is shown once. A
read-only token may only GET and HEAD; a scoped token only paths under its scopes (path
prefixes, normalised and matched by :mod:`gateway.policy.credentials`; stored as a JSON
list). Tokens belong to a user: disabling or removing the user ends them too.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from gateway.auth import tokens
from gateway.clock import SYSTEM_CLOCK, Clock, ManualClock
from gateway.i18n import N_
from gateway.policy.credentials import normalise_scope
from gateway.services import audit, held, users
from gateway.services.errors import Conflict, Invalid, NotFound, ServiceError
from gateway.store.db import DiskFullError, transaction


class TokenError(ServiceError):
    """A token change that cannot be made; the message says why."""


class TokenInvalid(TokenError, Invalid):
    """A token name that is not acceptable as given."""


class TokenNotFound(TokenError, NotFound):
    """No token with that id."""


class TokenRevoked(TokenError, Conflict):
    """The token is revoked already."""

    code = "already_revoked"


@dataclass(frozen=True)
class ApiToken:
    """A token's record (the admin API answers it as ``TokenOut``); the token itself and its
    hash are no part of it."""

    id: str
    user_name: Annotated[str, Field(serialization_alias="user")]
    name: str
    read_only: bool
    created_at: float
    expires_at: float | None
    last_used_at: float | None
    revoked_at: float | None
    # Not in the admin API's answers (they never were): the CLI shows them.
    scopes: Annotated[tuple[str, ...], Field(exclude=True)] = ()

    def active_at(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


MAX_SCOPES = 20


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes normalised for storing; a scope that is no plain path is refused."""
    checked: list[str] = []
    for scope in scopes:
        normal = normalise_scope(scope.strip())
        if normal is None:
            raise TokenInvalid(
                N_(
                    "scope '{scope}' is not a path prefix; give a path such as /api/v1/public/"
                    " or ws:/live (no query, '..', '%', ';' or '\\')"
                ),
                field="scopes",
                scope=scope,
            )
        if normal not in checked:
            checked.append(normal)
    if len(checked) > MAX_SCOPES:
        raise TokenInvalid(N_("give at most {count} scopes"), field="scopes", count=MAX_SCOPES)
    return tuple(checked)


def scopes_of(row: sqlite3.Row) -> tuple[str, ...]:
    """A token row's scopes (the column holds a JSON list)."""
    return tuple(str(scope) for scope in json.loads(row["scopes"] or "[]"))


NAME_LENGTH = N_("give the token a name of 1-100 characters, e.g. 'home assistant'")
NAME_NOT_PLAIN = N_("the token name contains control characters; use plain text")


def create_token(
    conn: sqlite3.Connection,
    user_name: str,
    *,
    name: str,
    read_only: bool,
    expires_in: float | None,
    actor: str,
    client_address: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
    scopes: Iterable[str] = (),
) -> tuple[str, ApiToken]:
    """Returns (the token, shown once; its record)."""
    user = users.require_user(conn, user_name)
    checked = check_scopes(scopes)
    if not name.strip() or len(name) > 100:
        raise TokenInvalid(NAME_LENGTH, field="name")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise TokenInvalid(NAME_NOT_PLAIN, field="name")
    token, token_id = tokens.new_api_token()
    parsed = tokens.parse_api_token(token)
    assert parsed is not None
    now = clock.now()
    with transaction(conn):
        conn.execute(
            "INSERT INTO api_token (id, user_id, name, secret_hash, read_only, created_at,"
            " expires_at, scopes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                token_id,
                user.id,
                name,
                tokens.token_hash(parsed[1]),
                int(read_only),
                now,
                now + expires_in if expires_in else None,
                json.dumps(list(checked)),
            ),
        )
        audit.record(
            conn,
            actor,
            "token.add",
            client_address=client_address,
            clock=clock,
            token=token_id,
            user=user.name,
            read_only=read_only,
            **({"scopes": " ".join(checked)} if checked else {}),
        )
    return token, get_token(conn, token_id)


def find_token(conn: sqlite3.Connection, token_id: str) -> ApiToken | None:
    row = conn.execute(
        "SELECT api_token.*, user.name AS user_name FROM api_token"
        " JOIN user ON user.id = api_token.user_id WHERE api_token.id = ?",
        (token_id,),
    ).fetchone()
    return _token(row) if row else None


def get_token(conn: sqlite3.Connection, token_id: str) -> ApiToken:
    token = find_token(conn, token_id)
    if token is None:
        raise TokenNotFound(
            N_("there is no token '{id}'; 'cemm-gateway token list' shows them"), id=token_id
        )
    return token


def _token(row: sqlite3.Row) -> ApiToken:
    return ApiToken(
        id=row["id"],
        user_name=row["user_name"],
        name=row["name"],
        read_only=bool(row["read_only"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
        scopes=scopes_of(row),
    )


def list_tokens(conn: sqlite3.Connection, *, user_name: str | None = None) -> list[ApiToken]:
    query = (
        "SELECT api_token.*, user.name AS user_name FROM api_token"
        " JOIN user ON user.id = api_token.user_id"
    )
    args: tuple[str, ...] = ()
    if user_name:
        query += " WHERE user.name = ?"
        args = (user_name,)
    return [_token(row) for row in conn.execute(query + " ORDER BY api_token.created_at", args)]


def revoke_token(
    conn: sqlite3.Connection,
    token_id: str,
    *,
    actor: str,
    client_address: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Revoke a token. Held on a full disk (:mod:`gateway.services.held`)."""
    try:
        _revoke_token(conn, token_id, actor, client_address, clock)
    except DiskFullError:
        if not held.enabled():
            raise
        token = get_token(conn, token_id)
        if token.revoked_at is not None:
            raise TokenRevoked(N_("token '{id}' is already revoked"), id=token_id) from None
        at = ManualClock(clock.now())
        held.hold(
            held.Cutoff(
                "token",
                token_id,
                f"API token {token_id} of {token.user_name} revoked by {actor}",
                lambda c: _revoke_token(c, token_id, actor, client_address, at),
            )
        )


def _revoke_token(
    conn: sqlite3.Connection,
    token_id: str,
    actor: str,
    client_address: str | None,
    clock: Clock,
) -> None:
    with transaction(conn):
        token = get_token(conn, token_id)
        if token.revoked_at is not None:
            raise TokenRevoked(N_("token '{id}' is already revoked"), id=token_id)
        conn.execute("UPDATE api_token SET revoked_at = ? WHERE id = ?", (clock.now(), token_id))
        audit.record(
            conn,
            actor,
            "token.revoke",
            client_address=client_address,
            clock=clock,
            token=token_id,
            user=token.user_name,
        )


def record_use(conn: sqlite3.Connection, last_used: Mapping[str, float]) -> None:
    if not last_used:
        return
    with transaction(conn):
        conn.executemany(
            "UPDATE api_token SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?",
            [(when, token_id) for token_id, when in last_used.items()],
        )
