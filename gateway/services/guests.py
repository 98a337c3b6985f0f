"""Guest links: time-limited access for a person without an account (an installer).

A guest link is a 256-bit random token (only its SHA-256 is stored), a name ("installer
Jan"), a role (``viewer`` or ``user``), a deadline and a number of browsers (default 1).
Opening the link asks the guest's name and starts a *guest session* in that browser: a row
of ``guest_session`` that ends at the link's deadline. The proxy checks guest sessions
exactly like login sessions - :func:`snapshot_sessions` adds them to the login snapshot -
so ending a link (revoked, or its deadline passed) closes the guest's WebSockets the way
ending a session does (:mod:`gateway.logins`).

Rules:

- A link opens sessions in at most ``browsers`` browsers over its whole life; a further
  browser is refused (:class:`GuestLinkFull`). A revoked or expired link opens nothing.
- A guest session is usable while its link is neither revoked nor past its deadline, and
  it is not revoked itself; its identity is ``guest:<name>`` (a user name never contains
  ``:``) with the link's role. Guests never reach the admin app (their role is not admin).
- The first use of a link is recorded as the audit event ``guest.first_use`` (who, from
  where, which link; notifications are sent on it), every session as ``guest.login``.
- Creating and revoking are ``guest.add`` and ``guest.revoke``.
"""

from __future__ import annotations

import hmac
import secrets
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from gateway import durations
from gateway.auth import tokens
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.i18n import N_
from gateway.policy.credentials import SessionInfo
from gateway.services import audit
from gateway.services.errors import Conflict, Invalid, NotFound, ServiceError
from gateway.store.db import transaction

GUEST_ROLES = ("viewer", "user")
GUEST_PREFIX = "guest:"
LINK_PATH = "/.gateway/guest/"
MAX_BROWSERS = 20
MAX_NAME = 100


class GuestError(ServiceError):
    """A guest-link change that cannot be made; the message says why."""


class GuestInvalid(GuestError, Invalid):
    """A name, role, deadline or browser count that is not acceptable as given."""


class GuestNotFound(GuestError, NotFound):
    """No guest link with that id."""


class GuestRevoked(GuestError, Conflict):
    """The link is revoked already."""

    code = "already_revoked"


class GuestLinkFull(GuestError, Conflict):
    """The link has opened sessions in as many browsers as it may."""

    code = "link_used_up"


@dataclass(frozen=True)
class GuestLink:
    id: int
    name: str
    role: str
    browsers: int
    created_by: str
    created_at: float
    expires_at: float
    revoked_at: float | None
    first_used_at: float | None
    first_used_from: str | None
    sessions: int

    def active(self, now: float) -> bool:
        return self.revoked_at is None and self.expires_at > now

    def state(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.expires_at > now else "expired"


@dataclass(frozen=True)
class GuestSession:
    token: str
    """For the browser's cookie; shown nowhere else."""
    info: SessionInfo
    link: GuestLink
    first_use: bool


def parse_deadline(text: str, *, now: float) -> float:
    """``--expires``: a duration (``8h``) from now, or a moment (``2026-12-12T17:00``, local
    time without an offset). Must lie in the future."""
    try:
        if text.strip()[:1].isdigit() and not any(c in text for c in "-:T"):
            return now + durations.parse_duration(text.strip())
        deadline = durations.timestamp(durations.parse_moment(text.strip()))
    except durations.DurationError as error:
        raise GuestInvalid(
            N_("{error}; give a duration such as 8h or a moment such as 2026-12-12T17:00"),
            field="expires",
            error=error.text,
        ) from None
    if deadline <= now:
        raise GuestInvalid(
            N_("the deadline {deadline} has passed already"), field="expires", deadline=text
        )
    return deadline


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise GuestInvalid(
            N_("give the link a name of 1-{most} characters, e.g. 'installer Jan'"),
            field="name",
            most=MAX_NAME,
        )
    return name


def check_role(role: str) -> str:
    if role not in GUEST_ROLES:
        raise GuestInvalid(
            N_("role '{role}' is not for guests; choose viewer or user"), field="role", role=role
        )
    return role


def check_browsers(browsers: int) -> int:
    if not 1 <= browsers <= MAX_BROWSERS:
        raise GuestInvalid(N_("browsers must be 1 to {most}"), field="browsers", most=MAX_BROWSERS)
    return browsers


def _check(name: str, role: str, browsers: int) -> str:
    name = check_name(name)
    check_role(role)
    check_browsers(browsers)
    return name


def create_link(
    conn: sqlite3.Connection,
    name: str,
    *,
    role: str,
    expires_at: float,
    browsers: int = 1,
    actor: str,
    client_address: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> tuple[str, GuestLink]:
    """A new link; returns (its token, shown once as part of the URL; its record)."""
    name = _check(name, role, browsers)
    now = clock.now()
    if expires_at <= now:
        raise GuestInvalid(N_("the deadline has passed already"), field="expires")
    token = secrets.token_urlsafe(32)  # 256 bits
    with transaction(conn):
        cursor = conn.execute(
            "INSERT INTO guest_link (name, role, token_hash, browsers, created_by, created_at,"
            " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, role, tokens.token_hash(token), browsers, actor, now, expires_at),
        )
        link_id = int(cursor.lastrowid or 0)
        audit.record(
            conn,
            actor,
            "guest.add",
            client_address=client_address,
            clock=clock,
            guest_link=str(link_id),
            name=name,
            role=role,
            browsers=str(browsers),
            expires_at=str(expires_at),
        )
    return token, get_link(conn, link_id)


_LINK_SELECT = (
    "SELECT guest_link.*, (SELECT count(*) FROM guest_session"
    " WHERE guest_session.link_id = guest_link.id) AS sessions FROM guest_link"
)


def _link(row: sqlite3.Row) -> GuestLink:
    return GuestLink(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        browsers=row["browsers"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        first_used_at=row["first_used_at"],
        first_used_from=row["first_used_from"],
        sessions=row["sessions"],
    )


def get_link(conn: sqlite3.Connection, link_id: int) -> GuestLink:
    row = conn.execute(_LINK_SELECT + " WHERE guest_link.id = ?", (link_id,)).fetchone()
    if row is None:
        raise GuestNotFound(
            N_("there is no guest link {id}; 'cemm-gateway guest list' shows them"), id=link_id
        )
    return _link(row)


def list_links(conn: sqlite3.Connection) -> list[GuestLink]:
    return [_link(row) for row in conn.execute(_LINK_SELECT + " ORDER BY guest_link.id")]


def revoke_link(
    conn: sqlite3.Connection,
    link_id: int,
    *,
    actor: str,
    client_address: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> GuestLink:
    """End the link and every session it opened; the running gateway closes their sockets."""
    with transaction(conn):
        link = get_link(conn, link_id)
        if link.revoked_at is not None:
            raise GuestRevoked(N_("guest link {id} is already revoked"), id=link_id)
        now = clock.now()
        conn.execute("UPDATE guest_link SET revoked_at = ? WHERE id = ?", (now, link_id))
        conn.execute(
            "UPDATE guest_session SET revoked_at = ? WHERE link_id = ? AND revoked_at IS NULL",
            (now, link_id),
        )
        audit.record(
            conn,
            actor,
            "guest.revoke",
            client_address=client_address,
            clock=clock,
            guest_link=str(link_id),
            name=link.name,
        )
    return get_link(conn, link_id)


def find_active(conn: sqlite3.Connection, token: str, *, now: float) -> GuestLink | None:
    """The usable link this token opens, or None (the caller counts that as a failed guess)."""
    if not token or len(token) > 100:
        return None
    digest = tokens.token_hash(token)
    row = conn.execute(_LINK_SELECT + " WHERE guest_link.token_hash = ?", (digest,)).fetchone()
    if row is None or not hmac.compare_digest(row["token_hash"], digest):
        return None
    link = _link(row)
    return link if link.active(now) else None


def guest_identity(guest_name: str) -> str:
    return GUEST_PREFIX + guest_name


def check_guest_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise GuestInvalid(
            N_("give your name, 1-{most} characters"), field="guest_name", most=MAX_NAME
        )
    return name


def open_session(
    conn: sqlite3.Connection,
    token: str,
    *,
    guest_name: str,
    client_address: str | None,
    user_agent: str | None,
    clock: Clock = SYSTEM_CLOCK,
) -> GuestSession | None:
    """A session in a new browser for the link ``token`` opens; None when no usable link
    has that token. Raises :class:`GuestLinkFull` when it has no browser left."""
    guest_name = check_guest_name(guest_name)
    now = clock.now()
    with transaction(conn):
        link = find_active(conn, token, now=now)
        if link is None:
            return None
        if link.sessions >= link.browsers:
            raise GuestLinkFull(
                N_(
                    "this guest link has been opened in as many browsers as it may; "
                    "ask for a new one"
                )
            )
        session_token = tokens.new_session_token()
        session_id = "g" + tokens.new_public_id()
        agent = (user_agent or "")[:300] or None
        conn.execute(
            "INSERT INTO guest_session (id, token_hash, link_id, guest_name, csrf_token,"
            " created_at, last_seen_at, expires_at, client_address, user_agent)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session_id,
                tokens.token_hash(session_token),
                link.id,
                guest_name,
                tokens.new_csrf_token(),
                now,
                now,
                link.expires_at,
                client_address,
                agent,
            ),
        )
        first_use = link.first_used_at is None
        details = {"guest_link": str(link.id), "link_name": link.name, "role": link.role}
        if first_use:
            conn.execute(
                "UPDATE guest_link SET first_used_at = ?, first_used_from = ? WHERE id = ?",
                (now, client_address, link.id),
            )
            audit.record(
                conn,
                guest_identity(guest_name),
                "guest.first_use",
                client_address=client_address,
                user_agent=agent,
                clock=clock,
                revoke=f"/guests#guest-{link.id}",
                **details,
            )
        audit.record(
            conn,
            guest_identity(guest_name),
            "guest.login",
            client_address=client_address,
            user_agent=agent,
            clock=clock,
            session=session_id,
            **details,
        )
        row = conn.execute(_SESSION_SELECT + " WHERE guest_session.id = ?", (session_id,))
        info = _session(row.fetchone())
    return GuestSession(session_token, info, get_link(conn, link.id), first_use)


_SESSION_SELECT = (
    "SELECT guest_session.*, guest_link.role AS role FROM guest_session"
    " JOIN guest_link ON guest_link.id = guest_session.link_id"
)


def _session(row: sqlite3.Row) -> SessionInfo:
    return SessionInfo(
        id=row["id"],
        user_id=-int(row["link_id"]),  # no account: never the id of a user
        user_name=guest_identity(row["guest_name"]),
        role=row["role"],
        csrf_token=row["csrf_token"],
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
        expires_at=row["expires_at"],
        client_address=row["client_address"],
        user_agent=row["user_agent"],
    )


def snapshot_sessions(
    conn: sqlite3.Connection, *, now: float, idle_timeout: float
) -> dict[str, SessionInfo]:
    """The usable guest sessions, by token hash, for the login snapshot."""
    return {
        row["token_hash"]: _session(row)
        for row in conn.execute(
            _SESSION_SELECT + " WHERE guest_session.revoked_at IS NULL"
            " AND guest_link.revoked_at IS NULL AND guest_session.expires_at > ?"
            " AND guest_link.expires_at > ? AND guest_session.last_seen_at > ?",
            (now, now, now - idle_timeout),
        )
    }


def list_sessions(conn: sqlite3.Connection, *, now: float) -> list[SessionInfo]:
    """The guest sessions still running, oldest first (the sessions list shows them)."""
    return [
        _session(row)
        for row in conn.execute(
            _SESSION_SELECT + " WHERE guest_session.revoked_at IS NULL"
            " AND guest_link.revoked_at IS NULL AND guest_session.expires_at > ?"
            " ORDER BY guest_session.created_at",
            (now,),
        )
    ]


def record_activity(conn: sqlite3.Connection, last_seen: Mapping[str, float]) -> None:
    """Keep guest sessions' idle clocks (the caller holds the transaction)."""
    conn.executemany(
        "UPDATE guest_session SET last_seen_at = max(last_seen_at, ?) WHERE id = ?",
        [(when, session_id) for session_id, when in last_seen.items() if session_id[:1] == "g"],
    )


def get_session(conn: sqlite3.Connection, session_id: str, *, now: float) -> SessionInfo | None:
    """The running guest session with this id, or None."""
    row = conn.execute(
        _SESSION_SELECT + " WHERE guest_session.id = ? AND guest_session.revoked_at IS NULL"
        " AND guest_link.revoked_at IS NULL AND guest_session.expires_at > ?",
        (session_id, now),
    ).fetchone()
    return _session(row) if row else None


def end_session(
    conn: sqlite3.Connection,
    session_id: str,
    *,
    actor: str,
    event: str,
    client_address: str | None,
    clock: Clock,
) -> bool:
    """End one guest session (a logout, or an admin's button); False when there is none.
    The caller holds the transaction."""
    row = conn.execute(
        _SESSION_SELECT + " WHERE guest_session.id = ? AND guest_session.revoked_at IS NULL",
        (session_id,),
    ).fetchone()
    if row is None:
        return False
    conn.execute("UPDATE guest_session SET revoked_at = ? WHERE id = ?", (clock.now(), session_id))
    audit.record(
        conn,
        actor,
        event,
        client_address=client_address,
        clock=clock,
        session=session_id,
        user=guest_identity(row["guest_name"]),
        guest_link=str(row["link_id"]),
    )
    return True
