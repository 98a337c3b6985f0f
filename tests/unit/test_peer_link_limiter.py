"""The one-time peer link's attempt limiter (gateway/portal/peer_link.py): ten attempts a
minute per client, in bounded memory, and no way to reset anyone's count by sending from
many addresses."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.portal.peer_link import ATTEMPTS_PER_MINUTE, AttemptLimiter

WINDOW = 60.0


def _tries(limiter: AttemptLimiter, client: str, now: float, count: int) -> list[bool]:
    return [limiter.allow(client, now) for _ in range(count)]


def test_ten_attempts_a_minute_then_refused_until_the_oldest_leaves_the_window() -> None:
    limiter = AttemptLimiter()
    assert _tries(limiter, "192.0.2.1", 0.0, ATTEMPTS_PER_MINUTE) == [True] * ATTEMPTS_PER_MINUTE
    assert not limiter.allow("192.0.2.1", 1.0)
    assert limiter.allow("192.0.2.2", 1.0)  # another client has its own count
    assert not limiter.allow("192.0.2.1", WINDOW - 0.1)  # the window is 60 s, not less
    again = _tries(limiter, "192.0.2.1", WINDOW, ATTEMPTS_PER_MINUTE + 1)
    assert again == [True] * ATTEMPTS_PER_MINUTE + [False]


def test_refused_attempts_do_not_count_so_hammering_gets_ten_a_minute() -> None:
    limiter = AttemptLimiter()
    allowed = [
        step / 10 for step in range(3000) if limiter.allow("192.0.2.1", step / 10)
    ]  # ten tries a second for five minutes
    assert len(allowed) == 5 * ATTEMPTS_PER_MINUTE
    for first, later in zip(allowed, allowed[ATTEMPTS_PER_MINUTE:], strict=False):
        assert later - first >= WINDOW


def test_many_other_addresses_do_not_reset_a_limited_client() -> None:
    limiter = AttemptLimiter(max_tracked=100)
    _tries(limiter, "198.51.100.7", 0.0, ATTEMPTS_PER_MINUTE)
    assert not limiter.allow("198.51.100.7", 1.0)
    # Far more addresses than the limiter tracks, all within the same minute.
    for n in range(5000):
        limiter.allow(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", 2.0 + n / 1000)
        assert len(limiter) <= 100
    assert "198.51.100.7" in limiter
    assert not limiter.allow("198.51.100.7", 30.0)
    assert limiter.allow("198.51.100.7", WINDOW + 0.1)


def test_clients_without_a_place_share_one_count() -> None:
    limiter = AttemptLimiter(max_tracked=3)
    for client in ("a", "b", "c"):
        assert limiter.allow(client, 0.0)
    # Every place is taken by a client still in the window: the newcomers share ten tries.
    newcomers = [limiter.allow(f"new-{n}", 1.0) for n in range(25)]
    assert newcomers.count(True) == ATTEMPTS_PER_MINUTE
    assert newcomers[:ATTEMPTS_PER_MINUTE] == [True] * ATTEMPTS_PER_MINUTE
    assert len(limiter) == 3 and "new-0" not in limiter
    # The tracked clients keep their own counts meanwhile.
    assert limiter.allow("a", 2.0)


def test_clients_whose_attempts_left_the_window_are_forgotten() -> None:
    limiter = AttemptLimiter(max_tracked=3)
    limiter.allow("a", 0.0)
    limiter.allow("b", 10.0)
    limiter.allow("c", 20.0)
    assert limiter.allow("d", WINDOW + 0.5)  # a's place came free: d has its own
    assert "a" not in limiter and "d" in limiter
    limiter.allow("b", 65.0)  # b's latest attempt is now newer than c's
    limiter.allow("e", WINDOW + 25.0)
    assert "c" not in limiter and "b" in limiter and "e" in limiter
    limiter.allow("f", 1000.0)
    assert len(limiter) == 1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 7), st.floats(0, 20, allow_nan=False)), min_size=1, max_size=300
    )
)
def test_memory_stays_bounded_and_no_client_gets_past_twice_the_limit(
    attempts: list[tuple[int, float]],
) -> None:
    limiter = AttemptLimiter(limit=3, window=WINDOW, max_tracked=4)
    now = 0.0
    allowed: dict[int, list[float]] = {}
    for client, pause in attempts:
        now += pause
        if limiter.allow(str(client), now):
            allowed.setdefault(client, []).append(now)
        assert len(limiter) <= 4
    everyone = sorted(t for times in allowed.values() for t in times)
    for times in allowed.values():
        for i, start in enumerate(times):
            # A client may count once while every place is taken (the shared count) and
            # once more with a place of its own; never more.
            assert sum(1 for t in times[i:] if t < start + WINDOW) <= 2 * 3
    for i, start in enumerate(everyone):
        # Four places and the shared count: at most five counts of three in any minute.
        assert sum(1 for t in everyone[i:] if t < start + WINDOW) <= 5 * 3
