"""The use cases behind the portal's login (gateway/services/login.py): the checks the
gate runs, the start of a session, a recorded failure - on a real database, no HTTP."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyotp
import pytest

from gateway.clock import ManualClock
from gateway.services import audit, login, sessions, users
from gateway.services.errors import Forbidden
from gateway.store import db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return db.connect(tmp_path / "gateway.db")


def _anna(conn: sqlite3.Connection) -> users.User:
    return users.add_user(conn, "anna", role="user", password=PASSWORD, actor="test")


def test_a_password_check_returns_the_user_or_none(conn: sqlite3.Connection) -> None:
    anna = _anna(conn)
    assert login.check_password(conn, "anna", PASSWORD) == anna
    assert login.check_password(conn, "anna", "wrong password here") is None
    assert login.check_password(conn, "nobody", PASSWORD) is None
    users.set_disabled(conn, "anna", True, actor="test")
    assert login.check_password(conn, "anna", PASSWORD) is None


def test_a_second_factor_is_a_totp_code_once_or_a_recovery_code_once(
    conn: sqlite3.Connection,
) -> None:
    clock = ManualClock()
    anna = _anna(conn)
    secret = users.begin_totp(conn, anna.id, clock=clock)
    code = pyotp.TOTP(secret).at(clock.now())
    recovery = users.confirm_totp(conn, anna.id, code, actor="anna", clock=clock)
    clock.advance(30)
    code = pyotp.TOTP(secret).at(clock.now())
    assert login.check_second_factor(conn, anna.id, code, clock=clock) == "totp"
    assert login.check_second_factor(conn, anna.id, code, clock=clock) is None
    assert login.check_second_factor(conn, anna.id, recovery[0], clock=clock) == "recovery"
    assert login.check_second_factor(conn, anna.id, recovery[0], clock=clock) is None
    assert login.check_second_factor(conn, anna.id, "000000", clock=clock) is None


def test_a_second_step_completes_only_for_a_usable_account(conn: sqlite3.Connection) -> None:
    anna = _anna(conn)
    assert login.user_for_second_step(conn, anna.id) == anna
    users.set_disabled(conn, "anna", True, actor="test")
    with pytest.raises(Forbidden, match="Account disabled"):
        login.user_for_second_step(conn, anna.id)
    with pytest.raises(Forbidden):
        login.user_for_second_step(conn, 9999)


def test_a_started_session_is_new_audited_and_clears_the_accounts_failures(
    conn: sqlite3.Connection,
) -> None:
    clock = ManualClock()
    anna = _anna(conn)
    conn.execute("INSERT INTO login_failure (subject, at) VALUES ('user:anna', ?)", (clock.now(),))
    conn.execute("INSERT INTO login_failure (subject, at) VALUES ('ip:192.0.2.7', ?)", (1.0,))
    first, second = (
        login.start_session(
            conn,
            anna,
            lifetime=3600,
            client_address="192.0.2.7",
            user_agent="test",
            method="password+totp",
            clock=clock,
        )
        for _ in range(2)
    )
    assert first.token != second.token and first.info.id != second.info.id
    assert first.info.expires_at == clock.now() + 3600
    assert sessions.find_session(conn, first.token, now=clock.now(), idle_timeout=60) == first.info
    left = [row[0] for row in conn.execute("SELECT subject FROM login_failure")]
    assert left == ["ip:192.0.2.7"]  # the address's count stays: it may be guessing others
    logins = [entry for entry in audit.entries(conn) if entry.event == "login"]
    assert len(logins) == 2
    entry = logins[0]
    assert (entry.actor, entry.client_address) == ("anna", "192.0.2.7")
    assert entry.detail["method"] == "password+totp"


def test_a_recorded_failure_is_a_login_failure_with_its_reason(conn: sqlite3.Connection) -> None:
    login.record_failure(
        conn,
        "oidc",
        reason="state cookie missing",
        client_address="192.0.2.7",
        user_agent="test",
        clock=ManualClock(),
        detail={"error": "x"},
    )
    entry = audit.entries(conn)[0]
    assert (entry.actor, entry.event, entry.user_agent) == ("oidc", "login.failure", "test")
    assert entry.detail == {"reason": "state cookie missing", "detail": {"error": "x"}}
