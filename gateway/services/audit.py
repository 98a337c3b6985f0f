"""The audit log: who did what, when, from where. Written in the same transaction as the
change it describes, so a change without its audit entry cannot exist."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.store.db import transaction


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    event: str
    client_address: str | None
    user_agent: str | None
    detail: dict[str, Any]


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
    conn.execute(
        "INSERT INTO audit_log (at, actor, event, client_address, user_agent, detail)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (clock.now(), actor, event, client_address, user_agent, json.dumps(detail, default=str)),
    )


def entries(
    conn: sqlite3.Connection, *, since: float | None = None, limit: int = 1000
) -> list[AuditEntry]:
    """The newest entries first, optionally only those at or after ``since``."""
    rows = conn.execute(
        "SELECT * FROM audit_log WHERE at >= ? ORDER BY at DESC, id DESC LIMIT ?",
        (since if since is not None else 0.0, limit),
    ).fetchall()
    return [
        AuditEntry(
            id=row["id"],
            at=row["at"],
            actor=row["actor"],
            event=row["event"],
            client_address=row["client_address"],
            user_agent=row["user_agent"],
            detail=json.loads(row["detail"]),
        )
        for row in rows
    ]


def purge(conn: sqlite3.Connection, *, before: float) -> int:
    """Delete entries older than the retention period."""
    with transaction(conn):
        return conn.execute("DELETE FROM audit_log WHERE at < ?", (before,)).rowcount
