"""Login sessions: created at login, checked on every request, ended for many reasons.

A session is a row in the database; the browser holds a random 256-bit token whose SHA-256
is the row's ``token_hash`` (a database leak does not hand out logins). The proxy never
reads the database per request: :func:`load_snapshot` compiles the usable sessions and API
tokens into an :class:`AuthSnapshot`, rebuilt whenever the database changes.

A session is usable while it is not revoked, its absolute lifetime has not passed, it has
been used within the idle timeout (an open WebSocket counts as use), and its user exists and
is enabled. Ending a session (logout, revoke, password change, disabling) is a database
write; the running gateway notices it and closes the session's WebSockets.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from gateway.auth import tokens
from gateway.clock import SYSTEM_CLOCK, Clock, ManualClock
from gateway.i18n import N_
from gateway.policy.credentials import ApiTokenInfo, AuthSnapshot, SessionInfo
from gateway.services import audit, guests, held
from gateway.services.api_tokens import scopes_of
from gateway.services.users import User, UserNotFound, require_user
from gateway.store.db import DiskFullError, transaction

_SESSION_SELECT = (
    "SELECT session.*, user.name AS user_name, user.role AS role FROM session"
    " JOIN user ON user.id = session.user_id"
)


def _session(row: sqlite3.Row) -> SessionInfo:
    return SessionInfo(
        id=row["id"],
        user_id=row["user_id"],
        user_name=row["user_name"],
        role=row["role"],
        csrf_token=row["csrf_token"],
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
        expires_at=row["expires_at"],
        client_address=row["client_address"],
        user_agent=row["user_agent"],
    )


def load_snapshot(
    conn: sqlite3.Connection, *, now: float, idle_timeout: float, generation: int = 0
) -> AuthSnapshot:
    sessions = {
        row["token_hash"]: _session(row)
        for row in conn.execute(
            _SESSION_SELECT + " WHERE session.revoked_at IS NULL AND session.expires_at > ?"
            " AND session.last_seen_at > ? AND user.disabled = 0",
            (now, now - idle_timeout),
        )
    }
    sessions.update(guests.snapshot_sessions(conn, now=now, idle_timeout=idle_timeout))
    api_tokens = {
        row["id"]: ApiTokenInfo(
            id=row["id"],
            user_id=row["user_id"],
            user_name=row["user_name"],
            role=row["role"],
            name=row["name"],
            secret_hash=row["secret_hash"],
            read_only=bool(row["read_only"]),
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            last_used_at=row["last_used_at"],
            scopes=scopes_of(row),
        )
        for row in conn.execute(
            "SELECT api_token.*, user.name AS user_name, user.role AS role FROM api_token"
            " JOIN user ON user.id = api_token.user_id WHERE api_token.revoked_at IS NULL"
            " AND (api_token.expires_at IS NULL OR api_token.expires_at > ?)"
            " AND user.disabled = 0",
            (now,),
        )
    }
    # Cut-offs held while the disk is full are in force all the same.
    held_users = {int(key) for key in held.held("user")}
    held_sessions, held_tokens = held.held("session"), held.held("token")
    if held_users or held_sessions:
        sessions = {
            key: info
            for key, info in sessions.items()
            if info.id not in held_sessions and info.user_id not in held_users
        }
    if held_users or held_tokens:
        api_tokens = {
            key: info
            for key, info in api_tokens.items()
            if key not in held_tokens and info.user_id not in held_users
        }
    return AuthSnapshot(sessions, api_tokens, idle_timeout, generation)


def create_session(
    conn: sqlite3.Connection,
    user: User,
    *,
    lifetime: float,
    client_address: str | None,
    user_agent: str | None,
    method: str,
    clock: Clock = SYSTEM_CLOCK,
) -> tuple[str, SessionInfo]:
    """A new session for ``user``; returns (token for the cookie, the session).

    Always a new random token: a session id planted before login is never adopted.
    """
    token = tokens.new_session_token()
    session_id = tokens.new_public_id()
    now = clock.now()
    agent = (user_agent or "")[:300] or None
    with transaction(conn):
        conn.execute(
            "INSERT INTO session (id, token_hash, user_id, csrf_token, created_at, last_seen_at,"
            " expires_at, client_address, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session_id,
                tokens.token_hash(token),
                user.id,
                tokens.new_csrf_token(),
                now,
                now,
                now + lifetime,
                client_address,
                agent,
            ),
        )
        audit.record(
            conn,
            user.name,
            "login",
            client_address=client_address,
            user_agent=agent,
            clock=clock,
            session=session_id,
            method=method,
        )
        row = conn.execute(_SESSION_SELECT + " WHERE session.id = ?", (session_id,)).fetchone()
    return token, _session(row)


def find_session(
    conn: sqlite3.Connection, token: str, *, now: float, idle_timeout: float
) -> SessionInfo | None:
    """The usable session for a cookie token (for the web app; the proxy uses snapshots)."""
    row = conn.execute(
        _SESSION_SELECT + " WHERE session.token_hash = ? AND session.revoked_at IS NULL"
        " AND session.expires_at > ? AND session.last_seen_at > ? AND user.disabled = 0",
        (tokens.token_hash(token), now, now - idle_timeout),
    ).fetchone()
    return _session(row) if row else None


def get_session(
    conn: sqlite3.Connection, session_id: str, *, now: float, idle_timeout: float
) -> SessionInfo | None:
    """The usable session with this id (not its token), or None."""
    row = conn.execute(
        _SESSION_SELECT + " WHERE session.id = ? AND session.revoked_at IS NULL"
        " AND session.expires_at > ? AND session.last_seen_at > ?",
        (session_id, now, now - idle_timeout),
    ).fetchone()
    return _session(row) if row else guests.get_session(conn, session_id, now=now)


def list_sessions(
    conn: sqlite3.Connection, *, now: float, idle_timeout: float, user_id: int | None = None
) -> list[SessionInfo]:
    """Usable sessions, most recently seen first."""
    query = (
        _SESSION_SELECT + " WHERE session.revoked_at IS NULL AND session.expires_at > ?"
        " AND session.last_seen_at > ?"
    )
    args: list[object] = [now, now - idle_timeout]
    if user_id is not None:
        query += " AND session.user_id = ?"
        args.append(user_id)
    query += " ORDER BY session.last_seen_at DESC"
    found = [_session(row) for row in conn.execute(query, args)]
    return found + (guests.list_sessions(conn, now=now) if user_id is None else [])


def list_user_sessions(
    conn: sqlite3.Connection, user_name: str | None, *, now: float, idle_timeout: float
) -> list[SessionInfo]:
    """Usable sessions of the named user (of everyone without a name), most recently seen
    first; :class:`UserNotFound` for a name nobody has."""
    user_id = require_user(conn, user_name).id if user_name else None
    return list_sessions(conn, now=now, idle_timeout=idle_timeout, user_id=user_id)


def end_session(
    conn: sqlite3.Connection,
    session_id: str,
    *,
    now: float,
    idle_timeout: float,
    actor: str,
    client_address: str | None = None,
) -> SessionInfo:
    """End one usable session (the admin app's button); returns what it was."""
    session = get_session(conn, session_id, now=now, idle_timeout=idle_timeout)
    if session is None:
        raise UserNotFound(N_("there is no active session '{id}'"), id=session_id)
    revoke_session(conn, session_id, actor=actor, reason="revoked", client_address=client_address)
    return session


def revoke_session(
    conn: sqlite3.Connection,
    session_id: str,
    *,
    actor: str,
    reason: str,
    event: str = "session.revoke",
    client_address: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """End one session. On a full disk, in the running gateway, the revocation is held in
    force and saved later (:mod:`gateway.services.held`)."""
    try:
        _revoke_session(conn, session_id, actor, reason, event, client_address, clock)
    except DiskFullError:
        if not held.enabled():
            raise
        row = conn.execute(
            _SESSION_SELECT + " WHERE session.id = ? AND session.revoked_at IS NULL",
            (session_id,),
        ).fetchone()
        if row is None:
            raise UserNotFound(N_("there is no active session '{id}'"), id=session_id) from None
        at = ManualClock(clock.now())
        held.hold(
            held.Cutoff(
                "session",
                session_id,
                f"session {session_id} of {row['user_name']} revoked by {actor}",
                lambda c: _revoke_session(c, session_id, actor, reason, event, client_address, at),
            )
        )


def _revoke_session(
    conn: sqlite3.Connection,
    session_id: str,
    actor: str,
    reason: str,
    event: str,
    client_address: str | None,
    clock: Clock,
) -> None:
    with transaction(conn):
        row = conn.execute(
            _SESSION_SELECT + " WHERE session.id = ? AND session.revoked_at IS NULL",
            (session_id,),
        ).fetchone()
        if row is None and guests.end_session(
            conn,
            session_id,
            actor=actor,
            event=event,
            client_address=client_address,
            clock=clock,
        ):
            return
        if row is None:
            raise UserNotFound(
                N_("there is no active session '{id}'; 'cemm-gateway session list' shows them"),
                id=session_id,
            )
        conn.execute(
            "UPDATE session SET revoked_at = ?, revoked_reason = ? WHERE id = ?",
            (clock.now(), reason, session_id),
        )
        audit.record(
            conn,
            actor,
            event,
            client_address=client_address,
            clock=clock,
            session=session_id,
            user=row["user_name"],
        )


def revoke_user_sessions(
    conn: sqlite3.Connection,
    user: User,
    *,
    actor: str,
    client_address: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> int:
    """End every session of ``user``; how many. Held on a full disk, as :func:`revoke_session`."""
    try:
        return _revoke_user_sessions(conn, user, actor, client_address, clock)
    except DiskFullError:
        if not held.enabled():
            raise
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM session WHERE user_id = ? AND revoked_at IS NULL", (user.id,)
            )
        ]
        at = ManualClock(clock.now())
        for session_id in ids:
            held.hold(
                held.Cutoff(
                    "session",
                    session_id,
                    f"session {session_id} of {user.name} revoked by {actor}",
                    lambda c, sid=session_id: _revoke_session(  # type: ignore[misc]
                        c, sid, actor, "revoked", "session.revoke", client_address, at
                    ),
                )
            )
        return len(ids)


def revoke_sessions_of(
    conn: sqlite3.Connection,
    user_name: str,
    *,
    actor: str,
    client_address: str | None = None,
) -> int:
    """End every session of the named user (:func:`revoke_user_sessions`); how many."""
    user = require_user(conn, user_name)
    return revoke_user_sessions(conn, user, actor=actor, client_address=client_address)


def _revoke_user_sessions(
    conn: sqlite3.Connection,
    user: User,
    actor: str,
    client_address: str | None,
    clock: Clock,
) -> int:
    with transaction(conn):
        ended = conn.execute(
            "UPDATE session SET revoked_at = ?, revoked_reason = 'revoked'"
            " WHERE user_id = ? AND revoked_at IS NULL",
            (clock.now(), user.id),
        ).rowcount
        audit.record(
            conn,
            actor,
            "session.revoke_all",
            client_address=client_address,
            clock=clock,
            user=user.name,
            ended=ended,
        )
    return ended


def record_activity(conn: sqlite3.Connection, last_seen: Mapping[str, float]) -> None:
    """Store when sessions were last used (kept in memory by the proxy, written in batches)."""
    if not last_seen:
        return
    with transaction(conn):
        conn.executemany(
            "UPDATE session SET last_seen_at = max(last_seen_at, ?) WHERE id = ?",
            [(seen, session_id) for session_id, seen in last_seen.items()],
        )
        guests.record_activity(conn, last_seen)


def purge(conn: sqlite3.Connection, *, now: float, idle_timeout: float) -> int:
    """Delete sessions that can never be used again."""
    with transaction(conn):
        return conn.execute(
            "DELETE FROM session WHERE revoked_at IS NOT NULL OR expires_at <= ?"
            " OR last_seen_at <= ?",
            (now, now - idle_timeout),
        ).rowcount
