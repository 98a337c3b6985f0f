"""What the gateway deletes on its hourly round: sessions that can never be used again,
failed-login records outside the brute-force window, and audit entries older than
``audit_retention_days`` - and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.auth.bruteforce import BruteForcePolicy
from gateway.clock import ManualClock
from gateway.services import audit, bans, sessions, users
from gateway.store import db

DAY = 86400.0


@pytest.fixture
def conn(tmp_path: Path):
    connection = db.connect(tmp_path / "gateway.db")
    yield connection
    connection.close()


def _session(conn, clock: ManualClock, lifetime: float = 30 * DAY) -> str:
    user = users.get_user(conn, "anna")
    assert user is not None
    _, info = sessions.create_session(
        conn,
        user,
        lifetime=lifetime,
        client_address="192.0.2.7",
        user_agent="t",
        method="password",
        clock=clock,
    )
    return info.id


def _session_ids(conn) -> set[str]:
    return {row[0] for row in conn.execute("SELECT id FROM session")}


def test_sessions_that_cannot_be_used_again_are_deleted(conn) -> None:
    clock = ManualClock()
    users.add_user(conn, "anna", role="user", password="a long password 1", actor="t")
    revoked = _session(conn, clock)
    sessions.revoke_session(conn, revoked, actor="t", reason="test", clock=clock)
    expiring = _session(conn, clock, lifetime=DAY)
    idle = _session(conn, clock)
    clock.advance(2 * DAY)
    active = _session(conn, clock)
    sessions.record_activity(conn, {expiring: clock.now(), active: clock.now()})
    purged = sessions.purge(conn, now=clock.now(), idle_timeout=DAY)
    assert purged == 3
    assert _session_ids(conn) == {active}
    assert idle not in _session_ids(conn)


def test_failed_logins_outside_the_window_and_old_audit_entries_are_deleted(conn) -> None:
    clock = ManualClock()
    policy = BruteForcePolicy(window=900)
    for advance in (0, 0, 1000):  # two failures, then one after the window has passed
        clock.advance(advance)
        bans.record_failure(
            conn,
            ["user:anna"],
            policy,
            client_address="192.0.2.7",
            user_agent="t",
            user_name="anna",
            clock=clock,
        )
    bans.purge(conn, now=clock.now(), policy=policy)
    assert conn.execute("SELECT count(*) FROM login_failure").fetchone()[0] == 1

    audit.record(conn, "t", "old.event", clock=ManualClock(clock.now() - 366 * DAY))
    audit.record(conn, "t", "recent.event", clock=ManualClock(clock.now() - 364 * DAY))
    assert audit.purge(conn, before=clock.now() - 365 * DAY) == 1
    events = {entry.event for entry in audit.entries(conn)}
    assert "old.event" not in events and "recent.event" in events
