"""Tests of the failed-login policy (gateway/auth/bruteforce.py), a rule per test."""

from __future__ import annotations

import pytest

from gateway.auth.bruteforce import (
    Assessment,
    BruteForcePolicy,
    assess,
    ban_key_for_address,
    combine,
    failures_in_window,
)
from gateway.clock import ManualClock

NOW = 1_700_000_000.0
POLICY = BruteForcePolicy()
DAY = 24 * 60 * 60


def failures(count: int, *, now: float = NOW, spacing: float = 1.0) -> list[float]:
    """``count`` failures, the latest at ``now``, ``spacing`` seconds apart."""
    return [now - spacing * i for i in range(count)][::-1]


# --- delay ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "delay"),
    [
        (0, 0.0),
        (1, 0.0),
        (2, 0.0),
        (3, 0.0),  # free_attempts = 3
        (4, 0.5),
        (5, 1.0),
        (6, 2.0),
        (7, 4.0),
        (8, 8.0),
        (9, 8.0),  # capped at max_delay
        (10, 8.0),
        (500, 8.0),
    ],
)
def test_delay_grows_after_the_free_attempts(count: int, delay: float) -> None:
    assert assess(failures(count), now=NOW, policy=POLICY).delay == delay


def test_delay_with_other_settings() -> None:
    policy = BruteForcePolicy(free_attempts=0, first_delay=1.0, max_delay=3.0)
    delays = [assess(failures(n), now=NOW, policy=policy).delay for n in range(5)]
    assert delays == [0.0, 1.0, 2.0, 3.0, 3.0]


def test_huge_failure_counts_do_not_overflow() -> None:
    policy = BruteForcePolicy(ban_after=10**9)
    assert assess([NOW] * 5000, now=NOW, policy=policy) == Assessment(delay=8.0, ban_until=None)


# --- window --------------------------------------------------------------------------------


def test_failures_older_than_the_window_do_not_count() -> None:
    old = failures(20, now=NOW - POLICY.window)  # all at or before the window start
    assert failures_in_window(old, now=NOW, policy=POLICY) == 0
    assert assess(old, now=NOW, policy=POLICY) == Assessment(delay=0.0, ban_until=None)


def test_window_boundary_is_exclusive() -> None:
    edge = NOW - POLICY.window
    assert failures_in_window([edge, edge + 0.001], now=NOW, policy=POLICY) == 1


def test_failures_expire_as_time_passes() -> None:
    clock = ManualClock(NOW)
    recorded = failures(6, now=clock.now())
    assert assess(recorded, now=clock.now(), policy=POLICY).delay == 2.0
    clock.advance(POLICY.window - 3)  # the three oldest have left the window
    assert failures_in_window(recorded, now=clock.now(), policy=POLICY) == 3
    assert assess(recorded, now=clock.now(), policy=POLICY).delay == 0.0
    clock.advance(10)
    assert failures_in_window(recorded, now=clock.now(), policy=POLICY) == 0


def test_failures_in_the_future_still_count() -> None:
    # The clock stepped back: recent failures must not be forgotten.
    assert failures_in_window([NOW + 60] * 4, now=NOW, policy=POLICY) == 4


def test_failures_need_not_be_sorted() -> None:
    shuffled = [NOW - 5, NOW - 2000, NOW, NOW - 1, NOW - 3000, NOW - 3]
    assert failures_in_window(shuffled, now=NOW, policy=POLICY) == 4


# --- bans ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "banned"), [(8, False), (9, False), (10, True), (25, True)])
def test_ban_when_the_count_reaches_ban_after(count: int, banned: bool) -> None:
    result = assess(failures(count), now=NOW, policy=POLICY)
    assert (result.ban_until is not None) is banned


def test_first_ban_lasts_ban_duration() -> None:
    assert assess(failures(10), now=NOW, policy=POLICY).ban_until == NOW + 900


def test_ban_counts_only_failures_in_the_window() -> None:
    spread = failures(10, spacing=POLICY.window / 5)  # only 5 in any window
    assert assess(spread, now=NOW, policy=POLICY).ban_until is None


@pytest.mark.parametrize(
    ("previous_bans", "length"),
    [
        (0, 900),
        (1, 1800),
        (2, 3600),
        (3, 7200),
        (5, 28800),
        (6, 57600),
        (7, DAY),  # 115200 capped at 24 h
        (50, DAY),
        (10_000, DAY),  # growth ** n overflows a float: still the cap
        (-1, 900),  # nonsense from the caller is treated as none
    ],
)
def test_ban_grows_with_previous_bans_up_to_a_day(previous_bans: int, length: float) -> None:
    result = assess(failures(10), now=NOW, policy=POLICY, previous_bans=previous_bans)
    assert result.ban_until == NOW + length


def test_bans_do_not_grow_with_growth_1() -> None:
    policy = BruteForcePolicy(ban_growth=1.0)
    assert assess(failures(10), now=NOW, policy=policy, previous_bans=9).ban_until == NOW + 900


def test_custom_ban_settings() -> None:
    policy = BruteForcePolicy(ban_after=3, ban_duration=60, ban_growth=3, max_ban=500)
    lengths = [
        assess(failures(3), now=NOW, policy=policy, previous_bans=n).ban_until for n in range(4)
    ]
    assert lengths == [NOW + 60, NOW + 180, NOW + 500, NOW + 500]


# --- combine -------------------------------------------------------------------------------


def test_combine_takes_the_longest_delay_and_the_latest_ban() -> None:
    account = Assessment(delay=0.5, ban_until=NOW + 900)
    address = Assessment(delay=4.0, ban_until=None)
    other = Assessment(delay=1.0, ban_until=NOW + 1800)
    assert combine(account, address, other) == Assessment(delay=4.0, ban_until=NOW + 1800)


def test_combine_of_nothing_is_no_restriction() -> None:
    assert combine() == Assessment(delay=0.0, ban_until=None)
    assert combine(Assessment(), Assessment()) == Assessment(delay=0.0, ban_until=None)


def test_account_and_address_are_assessed_separately_then_combined() -> None:
    by_account = assess(failures(10), now=NOW, policy=POLICY)
    by_address = assess(failures(5), now=NOW, policy=POLICY)
    assert combine(by_account, by_address) == Assessment(delay=8.0, ban_until=NOW + 900)


# --- policy validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"window": 0}, "window must be more than 0"),
        ({"free_attempts": -1}, "free_attempts must be 0 or more"),
        ({"first_delay": -1}, "first_delay must be 0 or more"),
        ({"max_delay": -0.5}, "max_delay must be 0 or more"),
        ({"ban_after": 0}, "ban_after must be at least 1.*large number"),
        ({"ban_duration": 0}, "ban_duration must be more than 0"),
        ({"ban_growth": 0.5}, "ban_growth must be 1"),
        ({"ban_duration": 1000, "max_ban": 10}, r"max_ban \(10\) must be at least ban_duration"),
        ({"window": float("nan")}, "window must be more than 0"),
    ],
)
def test_invalid_policy_is_refused_with_a_clear_message(
    settings: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=f"brute-force policy: .*{message}"):
        BruteForcePolicy(**settings)  # type: ignore[arg-type]


def test_policy_is_frozen() -> None:
    with pytest.raises(AttributeError):
        POLICY.window = 1  # type: ignore[misc]


# --- addresses -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("10.0.0.255", "10.0.0.255"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::1", "::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("::ffff:c000:201", "192.0.2.1"),
    ],
)
def test_ban_key_for_address(address: str, key: str) -> None:
    assert ban_key_for_address(address) == key


def test_addresses_in_one_v6_64_share_a_key_and_other_64s_do_not() -> None:
    same = {ban_key_for_address(f"2001:db8:aa:bb::{i:x}") for i in range(1, 200)}
    assert same == {"2001:db8:aa:bb::/64"}
    assert ban_key_for_address("2001:db8:aa:bc::1") != ban_key_for_address("2001:db8:aa:bb::1")


@pytest.mark.parametrize(
    "text",
    ["", "unix-socket", "192.0.2.300", "[2001:db8::1]", "192.0.2.1:443", "010.0.0.1", " 1.2.3.4"],
)
def test_unparsable_address_is_its_own_key(text: str) -> None:
    assert ban_key_for_address(text) == text


def test_non_string_address_does_not_raise() -> None:
    assert ban_key_for_address(None) is None  # type: ignore[arg-type]
