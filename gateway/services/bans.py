"""Failed guesses, delays and bans: the one gate every guess of a secret passes.

Every guess - a password (login form, JSON login, account page), a second-factor or
recovery code (login step, turning the second factor off, confirming a change), a
peer-link token - is reserved with :func:`reserve` before the secret is checked and ended
with :func:`settle`; the routes only ask. A refused guess is never checked, so a banned
subject gets the same answer whether its secret was right or wrong.

Failures are counted per account (``user:<name>``), per known device (``device:<id>``,
:mod:`gateway.services.devices`) and per client address (``address:<address>``, IPv6 by
/64). Within ``[auth.bruteforce] window`` the first few are free, then each answer is
delayed longer, and at ``ban_after`` the subject is banned for ``ban_duration`` (longer
for a subject banned before). Addresses in ``never_ban`` are never delayed or banned by
address (the account still is). A known device of an account is not refused by the
account's ban (its own failures ban the device and its address). Bans are rows in the
database, so they survive a restart, and are listed and lifted with ``cemm-gateway bans``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.auth.bruteforce import (
    Assessment,
    BruteForcePolicy,
    assess,
    ban_key_for_address,
    combine,
)
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.i18n import N_
from gateway.policy.allowlist import CompiledAllowlist
from gateway.services import audit
from gateway.services.errors import NotFound, ServiceError
from gateway.store.db import transaction


class BanError(ServiceError):
    """A ban that cannot be lifted; the message says why."""


class BanNotFound(BanError, NotFound):
    """No active ban matches."""


@dataclass(frozen=True)
class Ban:
    id: int
    subject: str
    reason: str
    created_at: float
    until: float


@dataclass(frozen=True)
class Attempt:
    """A guess that may be checked now: reserved by :func:`reserve`, ended by :func:`settle`.

    ``rows`` are the ``login_failure`` rows that count it (as a failure until it is settled
    as a success); the secret may be checked at ``not_before`` (epoch seconds), not earlier.
    """

    rows: tuple[int, ...]
    not_before: float


@dataclass(frozen=True)
class Refusal:
    """The guess is not checked at all: the same answer whatever the secret was."""

    until: float  # try again after this (epoch seconds)


def subjects(
    user_name: str, address: str | None, never_ban: CompiledAllowlist[object]
) -> list[str]:
    found = [f"user:{user_name.lower()}"] if user_name else []
    if address and not never_ban.decide(address).allowed:
        found.append(f"address:{ban_key_for_address(address)}")
    return found


def address_subjects(address: str | None, never_ban: CompiledAllowlist[object]) -> list[str]:
    """The subjects of a guess that names no account (a peer-link token): the address."""
    return subjects("", address, never_ban)


def device_subject(device_id: int) -> str:
    return f"device:{device_id}"


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


def reserve(
    conn: sqlite3.Connection,
    checked: list[str],
    policy: BruteForcePolicy,
    *,
    now: float,
    also_counted: Sequence[str] = (),
) -> Attempt | Refusal:
    """Reserve one guess of a secret before it is checked: the one gate of every guess.

    In one write transaction, so concurrent guesses are counted one after another:

    * a ``checked`` subject with an active ban: :class:`Refusal` until the ban ends;
    * a ``checked`` subject with ``ban_after`` attempts in the window (failures, and
      reservations not yet settled): :class:`Refusal` - N concurrent wrong guesses get at
      most ``ban_after`` checks, the rest are refused unchecked;
    * otherwise the attempt is written as a failure of every ``checked`` and
      ``also_counted`` subject (it stays one unless :func:`settle` says it succeeded), and
      may be checked at ``not_before``: after the latest scheduled attempt of its subjects
      plus the delay the policy gives, so parallel guesses are slowed like serial ones.

    ``also_counted`` subjects count the attempt but do not refuse it: the account, when the
    guess comes from a device that completed a login as that account before (so a
    stranger's guesses never lock the owner's known devices out).
    """
    with transaction(conn):
        ban = active_ban(conn, checked, now)
        if ban is not None:
            return Refusal(until=ban.until)
        since = now - policy.window
        counted = {subject: _failures(conn, subject, since) for subject in checked}
        full = [times for times in counted.values() if len(times) >= policy.ban_after]
        if full:
            return Refusal(until=max(now, *(max(times) for times in full)) + 1.0)
        assessment = combine(*(assess(t, now=now, policy=policy) for t in counted.values()))
        latest = max((max(times) for times in counted.values() if times), default=now)
        not_before = max(now, latest) + assessment.delay if assessment.delay else now
        rows = tuple(
            int(
                conn.execute(
                    "INSERT INTO login_failure (subject, at) VALUES (?, ?)", (subject, not_before)
                ).lastrowid
                or 0
            )
            for subject in dict.fromkeys([*checked, *also_counted])
        )
    return Attempt(rows=rows, not_before=not_before)


def settle(
    conn: sqlite3.Connection,
    attempt: Attempt,
    policy: BruteForcePolicy,
    *,
    succeeded: bool,
    client_address: str | None,
    user_agent: str | None,
    user_name: str,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """End a reserved attempt. A success removes just this attempt (a right password is
    not yet a login: the failed codes of a second factor still count, until
    :func:`record_success`); a failure stays counted, and every subject that reached
    ``ban_after`` is banned."""
    with transaction(conn):
        if succeeded:
            marks = ",".join("?" for _ in attempt.rows)
            conn.execute(f"DELETE FROM login_failure WHERE id IN ({marks})", attempt.rows)  # noqa: S608
            return
        marks = ",".join("?" for _ in attempt.rows)
        found = [
            row[0]
            for row in conn.execute(
                f"SELECT DISTINCT subject FROM login_failure WHERE id IN ({marks})",  # noqa: S608
                attempt.rows,
            )
        ]
        _count_failure(
            conn,
            found,
            policy,
            client_address=client_address,
            user_agent=user_agent,
            user_name=user_name,
            clock=clock,
        )


def _count_failure(
    conn: sqlite3.Connection,
    subject_list: list[str],
    policy: BruteForcePolicy,
    *,
    client_address: str | None,
    user_agent: str | None,
    user_name: str,
    clock: Clock,
) -> Assessment:
    """Audit a failure already written for ``subject_list``; ban those at the limit."""
    now = clock.now()
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
        result = assess(
            _failures(conn, subject, now - policy.window),
            now=now,
            policy=policy,
            previous_bans=_previous_bans(conn, subject),
        )
        if result.ban_until is not None and active_ban(conn, [subject], now) is None:
            conn.execute(
                "INSERT INTO ban (subject, reason, created_at, until) VALUES (?, ?, ?, ?)",
                (subject, N_("too many failed logins"), now, result.ban_until),
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
    """Count a failure that was not reserved (the CLI and tests); ban those at the limit."""
    now = clock.now()
    with transaction(conn):
        for subject in subject_list:
            conn.execute("INSERT INTO login_failure (subject, at) VALUES (?, ?)", (subject, now))
        return _count_failure(
            conn,
            subject_list,
            policy,
            client_address=client_address,
            user_agent=user_agent,
            user_name=user_name,
            clock=clock,
        )


def record_success(conn: sqlite3.Connection, user_name: str) -> None:
    """A completed login (every factor) clears the account's failure count (not the
    address's): the owner who mistyped starts afresh."""
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
        raise BanNotFound(
            N_("no active ban matches '{which}'; 'cemm-gateway bans list' shows them"),
            which=which,
        )
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
        raise BanNotFound(
            N_("there is no active ban with id {id}; it may have ended already"), id=ban_id
        )
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
