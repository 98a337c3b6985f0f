"""Allowlist entries: the one place that validates, stores and audits them.

The CLI and (later) the admin app call these functions; neither writes SQL. The running
gateway does not read entries per connection: it compiles them into a snapshot
(:mod:`gateway.services.policy`) whenever the table changes or an entry expires.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.policy.allowlist import AllowlistEntryError, parse_network
from gateway.services import audit
from gateway.store.db import transaction


class AllowlistError(ValueError):
    """A request to change the allowlist that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Entry:
    id: int
    network: str
    label: str
    expires_at: float | None
    created_at: float
    created_by: str
    hits: int
    last_hit_at: float | None

    def active(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``30m``, ``12h``, ``7d``, ``2w`` -> seconds. Refuses anything else, clearly."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise AllowlistError(
            f"expiry '{text}' is not a duration; use a positive number with a unit "
            "s, m, h, d or w, for example 7d or 12h"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def normalise(network: str) -> str:
    """The canonical text of a network entry, or :class:`AllowlistError`."""
    try:
        return str(parse_network(network))
    except AllowlistEntryError as error:
        raise AllowlistError(str(error)) from None


def _entry(row: sqlite3.Row) -> Entry:
    return Entry(**{key: row[key] for key in row.keys()})


def list_entries(conn: sqlite3.Connection) -> list[Entry]:
    rows = conn.execute("SELECT * FROM allowlist_entry ORDER BY network").fetchall()
    return [_entry(row) for row in rows]


def add_entry(
    conn: sqlite3.Connection,
    network: str,
    *,
    actor: str,
    label: str = "",
    expires_in: float | None = None,
    client_address: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Entry:
    """Add (or, for an existing network, update label and expiry) one entry."""
    canonical = normalise(network)
    if len(label) > 200:
        raise AllowlistError("label is longer than 200 characters")
    now = clock.now()
    expires_at = now + expires_in if expires_in is not None else None
    with transaction(conn):
        conn.execute(
            "INSERT INTO allowlist_entry (network, label, expires_at, created_at, created_by)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (network) DO UPDATE SET label = excluded.label,"
            " expires_at = excluded.expires_at",
            (canonical, label, expires_at, now, actor),
        )
        audit.record(
            conn,
            actor,
            "allowlist.add",
            client_address=client_address,
            clock=clock,
            network=canonical,
            label=label,
            expires_at=expires_at,
        )
        row = conn.execute(
            "SELECT * FROM allowlist_entry WHERE network = ?", (canonical,)
        ).fetchone()
    return _entry(row)


def remove_entry(
    conn: sqlite3.Connection,
    network: str,
    *,
    actor: str,
    client_address: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    canonical = normalise(network)
    with transaction(conn):
        deleted = conn.execute(
            "DELETE FROM allowlist_entry WHERE network = ?", (canonical,)
        ).rowcount
        if not deleted:
            raise AllowlistError(
                f"{canonical} is not on the allowlist; 'cemm-gateway allow list' shows the entries"
            )
        audit.record(
            conn,
            actor,
            "allowlist.remove",
            client_address=client_address,
            clock=clock,
            network=canonical,
        )


def add_hits(conn: sqlite3.Connection, hits: Mapping[int, tuple[int, float]]) -> None:
    """Add counted hits ``{entry id: (count, last time)}``; removed entries are skipped."""
    if not hits:
        return
    with transaction(conn):
        conn.executemany(
            "UPDATE allowlist_entry SET hits = hits + ?,"
            " last_hit_at = max(coalesce(last_hit_at, 0), ?) WHERE id = ?",
            [(count, last, entry_id) for entry_id, (count, last) in hits.items()],
        )
