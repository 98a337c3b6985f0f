"""Guest links in the store: making, opening in at most N browsers, the login snapshot,
revoking and expiry, the audit events, and ``--expires`` as a duration or a moment."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from gateway.auth import tokens
from gateway.clock import ManualClock
from gateway.services import guests, sessions
from gateway.store import db

NOW = 1_800_000_000.0


@pytest.fixture
def conn(tmp_path: Path):
    connection = db.connect(tmp_path / "gateway.db")
    yield connection
    connection.close()


def _open(conn, token: str, name: str = "Jan", clock: ManualClock | None = None):
    return guests.open_session(
        conn,
        token,
        guest_name=name,
        client_address="192.168.1.7",
        user_agent="phone",
        clock=clock or ManualClock(NOW + 10),
    )


def test_a_link_opens_one_browser_and_its_session_ends_at_the_deadline(conn) -> None:
    clock = ManualClock(NOW)
    token, link = guests.create_link(
        conn, "installer Jan", role="viewer", expires_at=NOW + 3600, actor="admin", clock=clock
    )
    assert len(token) >= 43  # 256 bits
    stored = conn.execute("SELECT token_hash FROM guest_link").fetchone()[0]
    assert stored == tokens.token_hash(token) and token not in stored
    started = _open(conn, token)
    assert started is not None and started.first_use
    info = started.info
    assert (info.user_name, info.role, info.expires_at) == ("guest:Jan", "viewer", NOW + 3600)
    with pytest.raises(guests.GuestLinkFull):
        _open(conn, token, "Piet")
    snapshot = sessions.load_snapshot(conn, now=NOW + 20, idle_timeout=3600)
    assert snapshot.sessions[tokens.token_hash(started.token)].user_name == "guest:Jan"
    later = sessions.load_snapshot(conn, now=NOW + 3600, idle_timeout=86400)
    assert tokens.token_hash(started.token) not in later.sessions
    assert _open(conn, token, clock=ManualClock(NOW + 3601)) is None
    events = [
        (row["actor"], row["event"], row["client_address"], json.loads(row["detail"]))
        for row in conn.execute("SELECT * FROM audit_log WHERE event LIKE 'guest.%' ORDER BY id")
    ]
    assert [e[1] for e in events] == ["guest.add", "guest.first_use", "guest.login"]
    assert events[1][0] == "guest:Jan" and events[1][2] == "192.168.1.7"
    assert events[1][3]["guest_link"] == str(link.id)


def test_a_revoked_link_ends_its_sessions_and_opens_nothing(conn) -> None:
    token, link = guests.create_link(
        conn,
        "Jan",
        role="user",
        expires_at=NOW + 3600,
        browsers=2,
        actor="admin",
        clock=ManualClock(NOW),
    )
    first, second = _open(conn, token), _open(conn, token, "Piet")
    assert first is not None and second is not None and not second.first_use
    guests.revoke_link(conn, link.id, actor="admin", clock=ManualClock(NOW + 20))
    snapshot = sessions.load_snapshot(conn, now=NOW + 30, idle_timeout=3600)
    assert not [s for s in snapshot.sessions.values() if s.user_name.startswith("guest:")]
    assert _open(conn, token, clock=ManualClock(NOW + 30)) is None
    with pytest.raises(guests.GuestRevoked):
        guests.revoke_link(conn, link.id, actor="admin")
    with pytest.raises(guests.GuestNotFound):
        guests.revoke_link(conn, 999, actor="admin")


def test_an_unknown_or_overlong_token_opens_nothing(conn) -> None:
    guests.create_link(
        conn, "Jan", role="viewer", expires_at=NOW + 60, actor="a", clock=ManualClock(NOW)
    )
    assert _open(conn, "x" * 43) is None
    assert _open(conn, "x" * 500) is None
    assert guests.find_active(conn, "", now=NOW) is None


@pytest.mark.parametrize(
    ("name", "role", "browsers"),
    [("", "viewer", 1), ("a\nb", "viewer", 1), ("Jan", "admin", 1), ("Jan", "viewer", 0)],
)
def test_a_link_must_be_sensible(conn, name: str, role: str, browsers: int) -> None:
    with pytest.raises(guests.GuestInvalid):
        guests.create_link(
            conn,
            name,
            role=role,
            expires_at=NOW + 60,
            browsers=browsers,
            actor="a",
            clock=ManualClock(NOW),
        )


def test_the_guest_must_give_a_name(conn) -> None:
    token, _ = guests.create_link(
        conn, "Jan", role="viewer", expires_at=NOW + 60, actor="a", clock=ManualClock(NOW)
    )
    with pytest.raises(guests.GuestInvalid):
        _open(conn, token, "   ")


def test_expires_takes_a_duration_or_a_moment() -> None:
    assert guests.parse_deadline("8h", now=NOW) == NOW + 8 * 3600
    moment = dt.datetime.fromtimestamp(NOW + 86400).replace(microsecond=0)
    assert guests.parse_deadline(moment.isoformat(timespec="minutes"), now=NOW) == pytest.approx(
        moment.replace(second=0).timestamp()
    )
    for bad in ("soon", "2020-01-01T10:00", "0h"):
        with pytest.raises(guests.GuestInvalid):
            guests.parse_deadline(bad, now=NOW)


def test_a_guest_session_is_found_and_ended_like_a_login_session(conn) -> None:
    token, _ = guests.create_link(
        conn, "Jan", role="viewer", expires_at=NOW + 3600, actor="a", clock=ManualClock(NOW)
    )
    started = _open(conn, token)
    assert started is not None
    found = sessions.get_session(conn, started.info.id, now=NOW + 20, idle_timeout=3600)
    assert found is not None and found.user_name == "guest:Jan"
    listed = sessions.list_sessions(conn, now=NOW + 20, idle_timeout=3600)
    assert [s.user_name for s in listed] == ["guest:Jan"]
    sessions.revoke_session(
        conn, started.info.id, actor="admin", reason="revoked", clock=ManualClock(NOW + 30)
    )
    assert sessions.get_session(conn, started.info.id, now=NOW + 40, idle_timeout=3600) is None
    snapshot = sessions.load_snapshot(conn, now=NOW + 40, idle_timeout=3600)
    assert not snapshot.sessions
