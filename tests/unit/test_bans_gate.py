"""The gate every guess passes (gateway/services/bans.py ``reserve``/``settle``) and the
known devices it spares (gateway/services/devices.py), on a real database: a rule per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.auth.bruteforce import BruteForcePolicy
from gateway.clock import ManualClock
from gateway.services import bans, devices, users
from gateway.store import db

NOW = 1_700_000_000.0
POLICY = BruteForcePolicy(free_attempts=1000, ban_after=3, ban_duration=900)
USER = ["user:anna", "address:192.0.2.7"]


@pytest.fixture
def conn(tmp_path: Path):
    connection = db.connect(tmp_path / "gateway.db")
    yield connection
    connection.close()


def _settle(conn, attempt: bans.Attempt, *, succeeded: bool, policy=POLICY) -> None:
    bans.settle(
        conn,
        attempt,
        policy,
        succeeded=succeeded,
        client_address="192.0.2.7",
        user_agent=None,
        user_name="anna",
        clock=ManualClock(NOW),
    )


def _reserve(conn, checked=USER, policy=POLICY, **kwargs) -> bans.Attempt | bans.Refusal:
    return bans.reserve(conn, list(checked), policy, now=NOW, **kwargs)


def test_attempts_in_flight_count_so_at_most_ban_after_are_checked(conn) -> None:
    reserved = [_reserve(conn) for _ in range(3)]
    assert all(isinstance(a, bans.Attempt) for a in reserved)
    # Nothing settled yet, nothing banned yet: the fourth concurrent guess is refused.
    refused = _reserve(conn)
    assert isinstance(refused, bans.Refusal) and refused.until > NOW
    assert bans.list_bans(conn, now=NOW) == []
    # One of them was the owner, and right: its place is free again.
    _settle(conn, reserved[0], succeeded=True)
    assert isinstance(_reserve(conn), bans.Attempt)


def test_the_failure_that_reaches_ban_after_bans_and_then_everything_is_refused(conn) -> None:
    for _ in range(3):
        attempt = _reserve(conn)
        assert isinstance(attempt, bans.Attempt)
        _settle(conn, attempt, succeeded=False)
    assert {ban.subject for ban in bans.list_bans(conn, now=NOW)} == set(USER)
    refused = _reserve(conn)
    assert isinstance(refused, bans.Refusal) and refused.until == NOW + 900
    # Another address, the same account: refused by the account's ban.
    assert isinstance(_reserve(conn, ["user:anna", "address:192.0.2.99"]), bans.Refusal)


def test_concurrent_guesses_are_slowed_one_after_another(conn) -> None:
    policy = BruteForcePolicy(free_attempts=0, first_delay=0.5, max_delay=8.0, ban_after=100)
    times = [_reserve(conn, policy=policy).not_before - NOW for _ in range(5)]  # type: ignore[union-attr]
    # Each waits for the one before it plus its own delay (0, 0.5, 1, 2, 4), not in parallel.
    assert times == [0.0, 0.5, 1.5, 3.5, 7.5]


def test_a_right_secret_removes_only_its_own_attempt(conn) -> None:
    # A right password is not a login yet: the codes tried after it keep counting.
    failed = _reserve(conn)
    assert isinstance(failed, bans.Attempt)
    _settle(conn, failed, succeeded=False)
    right = _reserve(conn)
    assert isinstance(right, bans.Attempt)
    _settle(conn, right, succeeded=True)
    left = dict(conn.execute("SELECT subject, count(*) FROM login_failure GROUP BY subject"))
    assert left == {"user:anna": 1, "address:192.0.2.7": 1}
    # A completed login clears the account's count, not the address's.
    bans.record_success(conn, "Anna")
    left = dict(conn.execute("SELECT subject, count(*) FROM login_failure GROUP BY subject"))
    assert left == {"address:192.0.2.7": 1}


def test_a_known_device_is_not_refused_by_the_account_but_counts_against_it(conn) -> None:
    for _ in range(3):
        attempt = _reserve(conn, ["user:anna", "address:198.51.100.1"])
        assert isinstance(attempt, bans.Attempt)
        _settle(conn, attempt, succeeded=False)
    phone = ["device:1", "address:192.0.2.7"]
    attempt = _reserve(conn, phone, also_counted=["user:anna"])
    assert isinstance(attempt, bans.Attempt)
    _settle(conn, attempt, succeeded=False)
    # The device's own failures ban the device (and its address), not other devices.
    for _ in range(2):
        attempt = _reserve(conn, phone, also_counted=["user:anna"])
        assert isinstance(attempt, bans.Attempt)
        _settle(conn, attempt, succeeded=False)
    assert isinstance(_reserve(conn, phone, also_counted=["user:anna"]), bans.Refusal)
    other = _reserve(conn, ["device:2", "address:203.0.113.5"], also_counted=["user:anna"])
    assert isinstance(other, bans.Attempt)


def test_a_guess_without_subjects_is_never_refused(conn) -> None:
    # A never-banned address guessing a peer-link token: nothing to count.
    attempt = _reserve(conn, [])
    assert isinstance(attempt, bans.Attempt) and attempt.rows == ()
    _settle(conn, attempt, succeeded=False)
    _settle(conn, attempt, succeeded=True)


# -- known devices ------------------------------------------------------------------------------
def _user(conn, name: str) -> users.User:
    return users.add_user(conn, name, role="user", password="a long password 1", actor="t")


def test_a_device_is_known_for_the_accounts_it_logged_in_as(conn) -> None:
    anna, bert = _user(conn, "anna"), _user(conn, "bert")
    token = devices.remember_device(conn, None, anna.id)
    assert devices.known_device(conn, token, "anna") is not None
    assert devices.known_device(conn, token, "ANNA") is not None  # names ignore case
    assert devices.known_device(conn, token, "bert") is None
    assert devices.known_device(conn, "made-up", "anna") is None
    assert devices.known_device(conn, None, "anna") is None
    # The same browser logging in as bert keeps its token and becomes known for both.
    assert devices.remember_device(conn, token, bert.id) == token
    assert devices.known_device(conn, token, "bert") is not None
    stored = [row[0] for row in conn.execute("SELECT token_hash FROM known_device")]
    assert token not in stored  # only hashes


def test_at_most_twenty_devices_per_account_the_latest(conn) -> None:
    anna = _user(conn, "anna")
    clock = ManualClock(NOW)
    made = []
    for _ in range(devices.MAX_DEVICES_PER_USER + 2):
        clock.advance(1)
        made.append(devices.remember_device(conn, None, anna.id, clock=clock))
    assert [devices.known_device(conn, t, "anna") is not None for t in made[:3]] == [
        False,
        False,
        True,
    ]


def test_a_password_change_forgets_every_other_device(conn) -> None:
    anna = _user(conn, "anna")
    here = devices.remember_device(conn, None, anna.id)
    elsewhere = devices.remember_device(conn, None, anna.id)
    users.set_password(conn, "anna", "another long password 2", actor="anna", keep_device=here)
    assert devices.known_device(conn, here, "anna") is not None
    assert devices.known_device(conn, elsewhere, "anna") is None
    users.set_password(conn, "anna", "a third long password 3", actor="cli:root")
    assert devices.known_device(conn, here, "anna") is None
