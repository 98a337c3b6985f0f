"""The policy for failed logins: how long to delay the next answer, and when to ban.

Pure: the caller keeps the failure timestamps and bans (in the database, so bans survive a
restart) and asks ``assess`` what to do; nothing here reads a clock or stores anything.

The algorithm, for one subject (an account, or a client address via
``ban_key_for_address``):

* Only failures in the last ``window`` seconds count (``now - window < t``; a timestamp
  later than ``now``, after the clock stepped back, still counts).
* With ``n`` counted failures, the next attempt is answered after ``delay`` seconds:
  0 while ``n <= free_attempts`` (a person mistyping), then ``first_delay`` doubling with
  each further failure (0.5, 1, 2, 4, ...) up to ``max_delay``. The delay slows a
  guesser to a crawl without locking out the owner of the account.
* When ``n`` reaches ``ban_after`` the subject is banned until
  ``now + ban_duration * ban_growth ** previous_bans``, at most ``max_ban`` (24 h by
  default): a subject that keeps coming back after its bans is banned for longer each
  time. ``previous_bans`` is the number of earlier bans of the subject the caller
  remembers.
* The caller should pass only failures *after* the subject's last ban ended or was lifted
  (or delete them when banning or lifting); otherwise, with a ``window`` longer than the
  ban, the failures that caused a ban would count again and ban again at once.

The caller (:func:`gateway.services.bans.reserve`, the one gate of every guess) assesses
the account (or the known device) and the client address of each guess, and ``combine``
takes the stricter answer: the account subject stops a distributed guess at one account,
the address subject stops one client trying many accounts. The caller spaces concurrent
attempts of a subject by these delays, so parallel guesses are no faster than serial ones.

Addresses: an IPv6 client usually controls a whole /64 (2^64 addresses: a home
connection gets at least that), so IPv6 addresses are aggregated to their /64; an
IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, from a dual-stack socket) is the IPv4
address it carries.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Assessment",
    "BruteForcePolicy",
    "assess",
    "ban_key_for_address",
    "combine",
    "failures_in_window",
]

_DAY = 24 * 60 * 60.0
# Exponents beyond this already exceed any sensible max_delay; keeps 2**n finite.
_MAX_EXPONENT = 64


@dataclass(frozen=True)
class BruteForcePolicy:
    """Tuning of the failed-login policy; the defaults suit a home gateway."""

    window: float = 900.0  # seconds during which a failure counts
    free_attempts: int = 3  # failures in the window answered without delay
    first_delay: float = 0.5  # delay after the first failure beyond free_attempts
    max_delay: float = 8.0  # the delay doubles up to this
    ban_after: int = 10  # failures in the window that lead to a ban
    ban_duration: float = 900.0  # length of a first ban
    ban_growth: float = 2.0  # each earlier ban multiplies the length by this
    max_ban: float = _DAY  # no ban is longer than this

    def __post_init__(self) -> None:
        problems = []
        if not self.window > 0:
            problems.append(f"window must be more than 0 seconds (got {self.window})")
        if self.free_attempts < 0:
            problems.append(f"free_attempts must be 0 or more (got {self.free_attempts})")
        if self.first_delay < 0:
            problems.append(f"first_delay must be 0 or more seconds (got {self.first_delay})")
        if self.max_delay < 0:
            problems.append(f"max_delay must be 0 or more seconds (got {self.max_delay})")
        if self.ban_after < 1:
            problems.append(
                f"ban_after must be at least 1 (got {self.ban_after}); to ban practically"
                " never, use a large number"
            )
        if not self.ban_duration > 0:
            problems.append(f"ban_duration must be more than 0 seconds (got {self.ban_duration})")
        if not self.ban_growth >= 1:
            problems.append(
                f"ban_growth must be 1 (bans do not grow) or more (got {self.ban_growth})"
            )
        if not self.max_ban >= self.ban_duration:
            problems.append(
                f"max_ban ({self.max_ban}) must be at least ban_duration ({self.ban_duration})"
            )
        if problems:
            raise ValueError("brute-force policy: " + "; ".join(problems))


@dataclass(frozen=True)
class Assessment:
    """What to do about the next attempt of a subject."""

    delay: float = 0.0  # seconds to wait before answering the next attempt
    ban_until: float | None = None  # refuse every attempt until this time (epoch seconds)


def failures_in_window(failures: Sequence[float], *, now: float, policy: BruteForcePolicy) -> int:
    """How many of ``failures`` count at ``now``."""
    oldest = now - policy.window
    return sum(1 for failed_at in failures if failed_at > oldest)


def _delay_for(count: int, policy: BruteForcePolicy) -> float:
    beyond = count - policy.free_attempts
    if beyond <= 0:
        return 0.0
    return min(policy.max_delay, policy.first_delay * 2.0 ** min(beyond - 1, _MAX_EXPONENT))


def _ban_length(previous_bans: int, policy: BruteForcePolicy) -> float:
    try:
        length = policy.ban_duration * policy.ban_growth ** max(previous_bans, 0)
    except OverflowError:
        return policy.max_ban
    return min(length, policy.max_ban)


def assess(
    failures: Sequence[float],
    *,
    now: float,
    policy: BruteForcePolicy,
    previous_bans: int = 0,
) -> Assessment:
    """Delay and ban for one subject, given the times of its failed attempts."""
    count = failures_in_window(failures, now=now, policy=policy)
    ban_until = now + _ban_length(previous_bans, policy) if count >= policy.ban_after else None
    return Assessment(delay=_delay_for(count, policy), ban_until=ban_until)


def combine(*assessments: Assessment) -> Assessment:
    """The stricter of several assessments: the longest delay and the latest ban."""
    delay = max((a.delay for a in assessments), default=0.0)
    bans = [a.ban_until for a in assessments if a.ban_until is not None]
    return Assessment(delay=delay, ban_until=max(bans) if bans else None)


def ban_key_for_address(address: str) -> str:
    """The subject a client address is counted and banned under.

    IPv4: the address. IPv6: its /64 as ``"2001:db8:1:2::/64"``. IPv4-mapped IPv6: the
    IPv4 address. Text that is not an address is returned unchanged (never raises).
    """
    if not isinstance(address, str):  # ip_address() would take an int as an address
        return address
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        # Built from the integer so a zone id ("fe80::1%eth0") does not reach the key.
        network = ipaddress.IPv6Network((int(parsed) >> 64 << 64, 64))
        return str(network)
    return str(parsed)
