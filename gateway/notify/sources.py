"""Where notices come from: the audit log, read as it grows.

Every committed audit entry is read once, by id, from whichever process wrote it (the web
app, the CLI, the background tasks); an entry whose event is notifiable becomes a
:class:`~gateway.notify.message.Notice` as it is. Reading the log rather than hooking each
writer means a change rolled back is never announced and a change made by the CLI is.

Three notices are worked out here, from the audit entries and tables of their own:

- ``login.new_device``: a ``login`` whose browser had no known-device cookie for the
  account (:mod:`gateway.services.devices` remembered it only at this login).
- ``login.new_address``: a ``login`` from an address the account has not logged in from
  in :data:`ADDRESS_MEMORY` (the ``login_address`` table; the audit log may be purged
  sooner). An account's very first login is neither: there is nothing to compare with.
- ``login.failure_burst``: ``free_attempts + 1`` failed logins for one account or from one
  address within the brute-force window - one notice per burst; the burst ends when the
  window passes without one. Bans come as the audit log's own ``ban`` entries.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.auth.bruteforce import BruteForcePolicy
from gateway.notify.message import Notice
from gateway.services.audit import AuditEntry

logger = logging.getLogger("cemm_gateway.notify")

ADDRESS_MEMORY = 90 * 86400.0
NEW_DEVICE_SLACK = 10.0  # seconds between the login's audit entry and its device row
_BATCH = 500
SETTLE = 1.0


@dataclass
class _Burst:
    started: float
    last: float
    count: int = 0
    told: bool = False


@dataclass
class FailureBursts:
    """Failed logins per account and per address, in the brute-force window."""

    policy: BruteForcePolicy
    bursts: dict[str, _Burst] = field(default_factory=dict)

    def add(self, subject: str, at: float) -> _Burst | None:
        """Count a failure; the burst when this failure makes it one worth telling."""
        burst = self.bursts.get(subject)
        if burst is None or at - burst.last > self.policy.window:
            burst = self.bursts[subject] = _Burst(started=at, last=at)
        burst.count += 1
        burst.last = at
        if not burst.told and burst.count > self.policy.free_attempts:
            burst.told = True
            return burst
        return None

    def forget_before(self, now: float) -> None:
        for subject in [s for s, b in self.bursts.items() if now - b.last > self.policy.window]:
            del self.bursts[subject]


def _new_device(conn: sqlite3.Connection, entry: AuditEntry) -> bool:
    """Whether the account's device row was made at this login (just after its audit
    entry), and the account had another device before (its first device is not news)."""
    user = str(entry.detail.get("user") or entry.actor)
    row = conn.execute(
        "SELECT count(*), coalesce(sum(known_device.created_at >= ?), 0) FROM known_device"
        " JOIN user ON user.id = known_device.user_id"
        " WHERE user.name = ? AND known_device.created_at <= ?",
        (entry.at, user, entry.at + NEW_DEVICE_SLACK),
    ).fetchone()
    total, new = int(row[0]), int(row[1])
    return new > 0 and total > new


def seen_address(conn: sqlite3.Connection, user: str, address: str, at: float) -> bool | None:
    """Remember that ``user`` logged in from ``address``; whether it was seen in the last
    :data:`ADDRESS_MEMORY` (None: the account's first login on record)."""
    known = conn.execute(
        "SELECT max(last_seen_at) FILTER (WHERE address = ?), count(*) FROM login_address"
        " WHERE user_name = ?",
        (address, user),
    ).fetchone()
    conn.execute(
        "INSERT INTO login_address (user_name, address, first_seen_at, last_seen_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (user_name, address)"
        " DO UPDATE SET last_seen_at = max(last_seen_at, excluded.last_seen_at)",
        (user, address, at, at),
    )
    conn.execute("DELETE FROM login_address WHERE last_seen_at < ?", (at - 2 * ADDRESS_MEMORY,))
    if not known[1]:
        return None
    return known[0] is not None and at - known[0] <= ADDRESS_MEMORY


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


class AuditSource:
    """Turns new audit entries into notices (see the module's docstring)."""

    def __init__(
        self, conn: sqlite3.Connection, policy: BruteForcePolicy, notify: Callable[[Notice], None]
    ) -> None:
        self.conn = conn
        self.bursts = FailureBursts(policy)
        self._notify = notify
        row = conn.execute("SELECT max(id) FROM audit_log").fetchone()
        self.last_id = int(row[0] or 0)  # what happened before the start is not news

    def poll(self, now: float | None = None) -> int:
        """Read and handle the entries written since the last poll; how many.

        An entry is read once it is :data:`SETTLE` seconds old: the web app remembers a
        login's device just after writing the login's entry."""
        cutoff = (time.time() if now is None else now) - SETTLE
        rows = self.conn.execute(
            "SELECT * FROM audit_log WHERE id > ? ORDER BY id LIMIT ?", (self.last_id, _BATCH)
        ).fetchall()
        handled = 0
        for row in rows:
            entry = _entry(row)
            if entry.at > cutoff:
                break
            self.last_id = entry.id
            self.handle(entry)
            handled += 1
        return handled

    def handle(self, entry: AuditEntry) -> None:
        if entry.event == "login":
            self._login(entry)
        elif entry.event == "login.failure":
            self._failure(entry)
        self._notify(Notice(entry.event, entry.at, entry.actor, entry.client_address, entry.detail))

    def _login(self, entry: AuditEntry) -> None:
        user = str(entry.detail.get("user") or entry.actor)
        detail = {"user": user, "user_agent": entry.user_agent}
        address = entry.client_address
        if _new_device(self.conn, entry):
            self._notify(Notice("login.new_device", entry.at, entry.actor, address, detail))
        if address and seen_address(self.conn, user, address, entry.at) is False:
            self._notify(Notice("login.new_address", entry.at, entry.actor, address, detail))

    def _failure(self, entry: AuditEntry) -> None:
        self.bursts.forget_before(entry.at)
        subjects = [f"account {entry.actor}"] if entry.actor not in ("", "-") else []
        if entry.client_address:
            subjects.append(f"address {entry.client_address}")
        for subject in subjects:
            burst = self.bursts.add(subject, entry.at)
            if burst is not None:
                # The window in seconds: the message says it in the home's language.
                window = self.bursts.policy.window
                detail = {"subject": subject, "count": burst.count, "window": window}
                self._notify(
                    Notice(
                        "login.failure_burst", entry.at, entry.actor, entry.client_address, detail
                    )
                )


class AuditWatch:
    """Polls :class:`AuditSource` every ``interval`` seconds in a thread of its own."""

    def __init__(self, source: AuditSource, *, interval: float = 1.0) -> None:
        self.source = source
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-notify-audit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 0.5) -> None:
        self._stop.set()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.source.conn.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                while self.source.poll() == _BATCH:
                    pass
            except sqlite3.Error as error:
                logger.warning("reading the audit log for notifications failed: %s", error)
