"""Failed logins, delays and bans: what the login routes ask before and after a password.

Failures are counted per account (``user:<name>``) and per client address
(``address:<address>``, IPv6 by /64). Within ``[auth.bruteforce] window`` the first few
are free, then each answer is delayed longer, and at ``ban_after`` the subject is banned
for ``ban_duration`` (longer for a subject banned before). Addresses in ``never_ban`` are
never delayed or banned by address (the account still is). Bans are rows in the database,
so they survive a restart, and are listed and lifted with ``cemm-gateway bans``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from gateway.auth.bruteforce import (
    Assessment,
    BruteForcePolicy,
    assess,
    ban_key_for_address,
    combine,
)
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.policy.allowlist import CompiledAllowlist
from gateway.services import audit
from gateway.store.db import transaction


class BanError(ValueError):
    """A ban that cannot be lifted; the message says why."""


@dataclass(frozen=True)
class Ban:
    id: int
    subject: str
    reason: str
    created_at: float
    until: float


@dataclass(frozen=True)
class Gate:
    """What to do with a login attempt before looking at the password."""

    banned_until: float | None
    delay: float


def subjects(
    user_name: str, address: str | None, never_ban: CompiledAllowlist[object]
) -> list[str]:
    found = [f"user:{user_name.lower()}"] if user_name else []
    if address and not never_ban.decide(address).allowed:
        found.append(f"address:{ban_key_for_address(address)}")
    return found


def _failures(conn: sqlite3.Connection, subject: str, since: float) -> list[float]:
    return [
        row[0]
        for row in conn.execute(
            "SELECT at FROM login_failure WHERE subject = ? AND at > ?", (subject, since)
        )
    ]


def _previous_bans(conn: sqlite3.Connection, subject: str) -> int:
    return int(conn.execute("SELECT count(*) FROM ban WHERE subject = ?", (subject,)).fetchone()[0])


def active_ban(conn: sqlite3.Connection, subject_list: list[str], now: float) -> Ban | None:
    if not subject_list:
        return None
    marks = ",".join("?" for _ in subject_list)
    row = conn.execute(
        f"SELECT * FROM ban WHERE subject IN ({marks}) AND until > ? AND lifted_at IS NULL"  # noqa: S608
        " ORDER BY until DESC LIMIT 1",
        (*subject_list, now),
    ).fetchone()
    return _ban(row) if row else None


def _ban(row: sqlite3.Row) -> Ban:
    return Ban(row["id"], row["subject"], row["reason"], row["created_at"], row["until"])


def gate(
    conn: sqlite3.Connection, subject_list: list[str], policy: BruteForcePolicy, *, now: float
) -> Gate:
    ban = active_ban(conn, subject_list, now)
    if ban is not None:
        return Gate(banned_until=ban.until, delay=0.0)
    assessment = combine(
        *(
            assess(_failures(conn, subject, now - policy.window), now=now, policy=policy)
            for subject in subject_list
        )
    )
    return Gate(banned_until=None, delay=assessment.delay)


def record_failure(
    conn: sqlite3.Connection,
    subject_list: list[str],
    policy: BruteForcePolicy,
    *,
    client_address: str | None,
    user_agent: str | None,
    user_name: str,
    clock: Clock = SYSTEM_CLOCK,
) -> Assessment:
    """Count a failed login for every subject; ban those that reached the limit."""
    now = clock.now()
    with transaction(conn):
        audit.record(
            conn,
            user_name or "-",
            "login.failure",
            client_address=client_address,
            user_agent=user_agent,
            clock=clock,
        )
        results = []
        for subject in subject_list:
            conn.execute("INSERT INTO login_failure (subject, at) VALUES (?, ?)", (subject, now))
            result = assess(
                _failures(conn, subject, now - policy.window),
                now=now,
                policy=policy,
                previous_bans=_previous_bans(conn, subject),
            )
            if result.ban_until is not None and active_ban(conn, [subject], now) is None:
                conn.execute(
                    "INSERT INTO ban (subject, reason, created_at, until) VALUES (?, ?, ?, ?)",
                    (subject, "too many failed logins", now, result.ban_until),
                )
                # The failures that led to the ban are spent.
                conn.execute("DELETE FROM login_failure WHERE subject = ?", (subject,))
                audit.record(
                    conn,
                    "system",
                    "ban",
                    client_address=client_address,
                    clock=clock,
                    subject=subject,
                    until=result.ban_until,
                )
            results.append(result)
    return combine(*results)


def record_success(conn: sqlite3.Connection, user_name: str) -> None:
    """A successful login clears the account's failure count (not the address's)."""
    with transaction(conn):
        conn.execute("DELETE FROM login_failure WHERE subject = ?", (f"user:{user_name.lower()}",))


def list_bans(conn: sqlite3.Connection, *, now: float) -> list[Ban]:
    return [
        _ban(row)
        for row in conn.execute(
            "SELECT * FROM ban WHERE until > ? AND lifted_at IS NULL ORDER BY until", (now,)
        )
    ]


def lift(
    conn: sqlite3.Connection,
    which: str,
    *,
    actor: str,
    client_address: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> list[Ban]:
    """Lift the active ban with that id, or every active ban of that subject/address/user."""
    now = clock.now()
    active = list_bans(conn, now=now)
    chosen = [
        ban
        for ban in active
        if which in (str(ban.id), ban.subject, ban.subject.split(":", 1)[1])
        or ban.subject == f"address:{ban_key_for_address(which)}"
        or ban.subject == f"user:{which.lower()}"
    ]
    if not chosen:
        raise BanError(f"no active ban matches '{which}'; 'cemm-gateway bans list' shows them")
    _lift(conn, chosen, actor=actor, client_address=client_address, clock=clock)
    return chosen


def lift_ban(
    conn: sqlite3.Connection,
    ban_id: int,
    *,
    actor: str,
    client_address: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Ban:
    """Lift exactly the active ban with this id (the admin app's button)."""
    found = [ban for ban in list_bans(conn, now=clock.now()) if ban.id == ban_id]
    if not found:
        raise BanError(f"there is no active ban with id {ban_id}; it may have ended already")
    _lift(conn, found, actor=actor, client_address=client_address, clock=clock)
    return found[0]


def _lift(
    conn: sqlite3.Connection,
    chosen: list[Ban],
    *,
    actor: str,
    client_address: str | None,
    clock: Clock,
) -> None:
    now = clock.now()
    with transaction(conn):
        for ban in chosen:
            conn.execute(
                "UPDATE ban SET lifted_at = ?, lifted_by = ? WHERE id = ?", (now, actor, ban.id)
            )
            conn.execute("DELETE FROM login_failure WHERE subject = ?", (ban.subject,))
            audit.record(
                conn,
                actor,
                "ban.lift",
                client_address=client_address,
                clock=clock,
                subject=ban.subject,
            )


def purge(conn: sqlite3.Connection, *, now: float, policy: BruteForcePolicy) -> None:
    with transaction(conn):
        conn.execute("DELETE FROM login_failure WHERE at <= ?", (now - policy.window,))
