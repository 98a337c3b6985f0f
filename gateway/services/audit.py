"""The audit log: who did what, when, from where. Written in the same transaction as the
change it describes, so a change without its audit entry cannot exist.

Reading it: :func:`search` (newest first, by person, event and time range), as the CLI and
the admin app show it, and :func:`as_csv` for the export; :func:`entries` is the
unfiltered listing.

Where a change comes from: an entry written while the web app handles a request carries
that request's client address and user agent (:data:`REQUESTER`, set by the web app for
each request and carried to its database thread) unless the caller names others. Changes
from the CLI or the gateway itself (``system:...`` actors) have none.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.metrics import EVENTS
from gateway.store.db import after_commit, transaction


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    event: str
    client_address: str | None
    user_agent: str | None
    detail: dict[str, Any]


#: (client address, user agent) of the web request being handled, if any.
REQUESTER: ContextVar[tuple[str | None, str | None]] = ContextVar(
    "audit_requester", default=(None, None)
)


@contextmanager
def requested_by(client_address: str | None, user_agent: str | None) -> Iterator[None]:
    """Entries written inside are attributed to this client (see the module's docstring)."""
    token = REQUESTER.set((client_address or None, user_agent or None))
    try:
        yield
    finally:
        REQUESTER.reset(token)


def record(
    conn: sqlite3.Connection,
    actor: str,
    event: str,
    *,
    client_address: str | None = None,
    user_agent: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
    **detail: Any,
) -> None:
    """Append one entry. Call inside the transaction that makes the change."""
    address, agent = REQUESTER.get()
    client_address = client_address if client_address is not None else address
    user_agent = user_agent if user_agent is not None else agent
    conn.execute(
        "INSERT INTO audit_log (at, actor, event, client_address, user_agent, detail)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (clock.now(), actor, event, client_address, user_agent, json.dumps(detail, default=str)),
    )
    # The monotonic counters of /metrics count what happened: only once it is committed.
    after_commit(conn, lambda: EVENTS.count(event, detail))


def _entry(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        at=row["at"],
        actor=row["actor"],
        event=row["event"],
        client_address=row["client_address"],
        user_agent=row["user_agent"],
        detail=json.loads(row["detail"]),
    )


def entries(
    conn: sqlite3.Connection, *, since: float | None = None, limit: int = 1000
) -> list[AuditEntry]:
    """The newest entries first, optionally only those at or after ``since``."""
    return search(conn, since=since, limit=limit)


def search(
    conn: sqlite3.Connection,
    *,
    user: str | None = None,
    event: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int | None = 1000,
) -> list[AuditEntry]:
    """The newest entries first that match every filter given (all of them with
    ``limit=None``).

    ``user`` matches entries the person made (the actor, ignoring case) and entries about
    them (``user`` in the detail). ``event`` matches
    the event itself or, without a dot, its family (``user`` matches ``user.add``).
    ``since`` is inclusive, ``until`` exclusive.
    """
    clauses = ["at >= ?"]
    args: list[object] = [since if since is not None else 0.0]
    if until is not None:
        clauses.append("at < ?")
        args.append(until)
    if user:
        clauses.append(
            "(actor = ? COLLATE NOCASE OR json_extract(detail, '$.user') = ? COLLATE NOCASE)"
        )
        args += [user, user]
    if event:
        if "." in event:
            clauses.append("event = ?")
            args.append(event)
        else:
            clauses.append("(event = ? OR substr(event, 1, ?) = ?)")
            args += [event, len(event) + 1, f"{event}."]
    args.append(-1 if limit is None else max(0, limit))  # SQLite: LIMIT -1 is no limit
    rows = conn.execute(
        f"SELECT * FROM audit_log WHERE {' AND '.join(clauses)}"  # noqa: S608 - fixed clauses
        " ORDER BY at DESC, id DESC LIMIT ?",
        args,
    ).fetchall()
    return [_entry(row) for row in rows]


def event_names(conn: sqlite3.Connection) -> list[str]:
    """Every event name in the log, for a filter's choices."""
    return [row[0] for row in conn.execute("SELECT DISTINCT event FROM audit_log ORDER BY event")]


CSV_COLUMNS = ("time", "actor", "event", "client_address", "user_agent", "detail")
# A cell a spreadsheet would read as a formula (user names and user agents come from
# anyone who tries to log in) is prefixed with an apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def as_csv(found: Iterable[AuditEntry]) -> str:
    """The entries as CSV (UTC ISO 8601 times, the detail as JSON), safe to open in a
    spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in found:
        stamp = dt.datetime.fromtimestamp(entry.at, dt.UTC).isoformat(timespec="seconds")
        writer.writerow(
            [
                stamp,
                _cell(entry.actor),
                _cell(entry.event),
                _cell(entry.client_address or ""),
                _cell(entry.user_agent or ""),
                _cell(json.dumps(entry.detail, sort_keys=True, default=str)),
            ]
        )
    return out.getvalue()


def purge(conn: sqlite3.Connection, *, before: float) -> int:
    """Delete entries older than the retention period."""
    with transaction(conn):
        return conn.execute("DELETE FROM audit_log WHERE at < ?", (before,)).rowcount
