"""The waiting passkey ceremonies: bound ones (a session, an enrolment, a second-factor step)
are never pushed out by logins with a passkey alone, and one client address (an IPv6 /64)
holds at most ``PER_ADDRESS`` of each kind."""

from __future__ import annotations

from gateway.policy.passkeys import RelyingParty
from gateway.portal.passkey_ceremonies import MAX_CEREMONIES, PER_ADDRESS, Ceremonies
from gateway.services.passkeys import Ceremony


def _ceremony() -> Ceremony:
    return Ceremony("{}", b"challenge", RelyingParty("localhost", "http://localhost"))


def test_unbound_ceremonies_never_push_out_bound_ones() -> None:
    waiting = Ceremonies()
    mine = _ceremony()
    waiting.add(mine, bound_to="session-1", ticket="register:session-1", address="10.0.0.1")
    for n in range(2 * MAX_CEREMONIES):
        waiting.add(_ceremony(), address=f"10.1.{n // 250}.{n % 250}")
    assert waiting.take("register:session-1", bound_to="session-1") is mine


def test_one_address_holds_at_most_its_share() -> None:
    waiting = Ceremonies()
    other = waiting.add(_ceremony(), address="192.0.2.7")
    flood = [waiting.add(_ceremony(), address=f"2001:db8::{n:x}") for n in range(3 * PER_ADDRESS)]
    # The same /64: the oldest went, the newest wait; the other address's one waits too.
    assert [waiting.take(t) is not None for t in flood] == [False] * (2 * PER_ADDRESS) + [
        True
    ] * PER_ADDRESS
    assert waiting.take(other) is not None


def test_a_ticket_is_taken_once_and_only_with_its_binding() -> None:
    waiting = Ceremonies()
    ticket = waiting.add(_ceremony(), bound_to="challenge-1", address="10.0.0.1")
    assert waiting.take(ticket) is None  # not as a login with a passkey alone
    ticket = waiting.add(_ceremony(), bound_to="challenge-1", address="10.0.0.1")
    assert waiting.take(ticket, bound_to="challenge-2") is None
    ticket = waiting.add(_ceremony(), bound_to="challenge-1", address="10.0.0.1")
    assert waiting.take(ticket, bound_to="challenge-1") is not None
    assert waiting.take(ticket, bound_to="challenge-1") is None
