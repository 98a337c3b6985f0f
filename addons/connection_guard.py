"""The first check: is the client's address allowed on this listener at all?

Runs in ``client_connected``, before any TLS handshake or HTTP parsing: a refused client
gets its TCP connection closed and nothing else - no ServerHello, no HTTP status, no hint
that a proxy is there. The web and ws ports use the allowlist (configured defaults plus
entries from the database); the admin port uses ``[allowlist] admin_networks``.

An allowed address may hold at most ``[limits] max_connections_per_client`` connections at
once (counted over all listeners); one more is refused the same way, with the reason
``too_many_connections``. Addresses in the admin networks and trusted proxies (whose
connections carry many clients) are exempt, so an administrator can always get in.

With ACME's HTTP-01 challenge pending, an address the allowlist refuses may still connect
to the web port (the window of :mod:`gateway.policy.acme_challenge`, asked through
``challenge_window``); such a connection gets nothing but a challenge answer.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from mitmproxy import connection

from addons.base import fail_closed, listener_of, logger
from addons.connection_registry import ConnectionRegistry
from gateway.policy.allowlist import decide_connection
from gateway.proxy.state import ProxyState

# The log's interval, and how many denials in one interval get a line of their own.
DENIAL_INTERVAL = 60.0
DENIAL_LINES = 20
# How many distinct addresses a summary counts exactly; beyond that it says "at least".
DENIAL_ADDRESSES = 10_000


class DenialLog:
    """Logs denials without letting a scan flood the log.

    In each interval (a minute, starting at the first denial after a quiet one) the first
    denial of an address for a reason gets a line of its own, for at most ``lines``
    addresses; an address already logged is not logged again for an interval. Every other
    denial is counted, and when the interval ends there is one summary line per reason:
    "N more denials (reason) from M addresses in the last 60 s". A scan from any number of
    addresses therefore writes at most ``lines`` lines plus one per reason a minute.

    Memory is bounded too: the addresses logged in the last interval (at most twice
    ``lines``), and the distinct addresses counted for the summaries (at most
    ``max_addresses``, all forgotten when the summaries are written).

    The caller passes the time (``time.monotonic()``) and calls :meth:`flush` when
    :meth:`next_flush` says so, so that a summary is written when its interval ends and not
    only when the next denial comes.
    """

    def __init__(
        self,
        *,
        interval: float = DENIAL_INTERVAL,
        lines: int = DENIAL_LINES,
        max_addresses: int = DENIAL_ADDRESSES,
    ) -> None:
        self.interval = interval
        self.lines = lines
        self.max_addresses = max_addresses
        self._interval_end: float | None = None
        self._lines_left = lines
        # (address, reason) -> when it was last logged, oldest first.
        self._logged: dict[tuple[str, str], float] = {}
        # reason -> denials not logged on their own line, and from which addresses.
        self._more: dict[str, int] = {}
        self._more_from: dict[str, set[str]] = {}
        self._addresses = 0
        self._capped_reasons: set[str] = set()

    def denied(self, address: str, reason: str, listener: str, now: float) -> None:
        if self._interval_end is not None and now >= self._interval_end:
            self.flush(now)
        if self._interval_end is None:
            self._interval_end = now + self.interval
            self._forget(now)
        key = (address, reason)
        last = self._logged.get(key)
        if (last is None or now - last >= self.interval) and self._lines_left > 0:
            self._lines_left -= 1
            self._logged.pop(key, None)
            self._logged[key] = now
            logger.warning("denied %s on the %s port: %s", address, listener, reason)
            return
        self._more[reason] = self._more.get(reason, 0) + 1
        seen = self._more_from.setdefault(reason, set())
        if address not in seen:
            if self._addresses < self.max_addresses:
                seen.add(address)
                self._addresses += 1
            else:
                self._capped_reasons.add(reason)

    def next_flush(self) -> float | None:
        """When the pending summaries are due; None if there are none."""
        return self._interval_end if self._more else None

    def flush(self, now: float, *, force: bool = False) -> None:
        """Write the summaries of an interval that has ended (of any, with ``force``)."""
        if self._interval_end is None or (now < self._interval_end and not force):
            return
        for reason, count in self._more.items():
            addresses = len(self._more_from.get(reason, ()))
            logger.warning(
                "%d more denial%s (%s) from %s%d address%s in the last %g s",
                count,
                "" if count == 1 else "s",
                reason,
                "at least " if reason in self._capped_reasons else "",
                addresses,
                "" if addresses == 1 else "es",
                self.interval,
            )
        self._more.clear()
        self._more_from.clear()
        self._addresses = 0
        self._capped_reasons.clear()
        self._interval_end = None
        self._lines_left = self.lines
        self._forget(now)

    def _forget(self, now: float) -> None:
        """Forget the addresses logged more than an interval ago (oldest first)."""
        while self._logged:
            key, logged = next(iter(self._logged.items()))
            if now - logged < self.interval:
                break
            del self._logged[key]

    def tracked(self) -> int:
        """How many addresses the log holds in memory."""
        return len(self._logged) + self._addresses


class ChallengeWindow(Protocol):
    def admit_outside(self, client: connection.Client, listener: str) -> bool: ...


class ConnectionGuard:
    def __init__(
        self,
        state: ProxyState,
        registry: ConnectionRegistry,
        denial_log: DenialLog | None = None,
    ) -> None:
        self.state = state
        self.registry = registry
        self.denial_log = denial_log if denial_log is not None else DenialLog()
        self._flush_timer: asyncio.TimerHandle | None = None
        # Allowlist entry id -> (hits, last hit time), drained by the app into the database.
        self.hits: dict[int, tuple[int, float]] = {}
        # The ACME HTTP-01 window (addons/acme_challenge.py): asked before refusing an
        # address the allowlist does not hold; None without ACME.
        self.challenge_window: ChallengeWindow | None = None

    @fail_closed
    def client_connected(self, client: connection.Client) -> None:
        listener = listener_of(self.state, client)
        peer = client.peername[0] if client.peername else ""
        if listener is None:
            self._refuse(client, peer, "unknown_listener", "?")
            return
        policy = self.state.policy
        decision = decide_connection(peer, policy.allowlist_for(listener.name))
        if not decision.allowed and not (
            self.challenge_window is not None
            and self.challenge_window.admit_outside(client, listener.name)
        ):
            self._refuse(client, peer, decision.reason, listener.name)
            return
        cap = self.state.limits.max_connections_per_client
        if (
            cap
            and self.registry.connections_from(peer) >= cap
            and not policy.admin_allowlist.contains(peer)
            and not policy.trusted_proxies.contains(peer)
        ):
            self._refuse(client, peer, "too_many_connections", listener.name)
            return
        if isinstance(decision.entry_key, int):
            count, _ = self.hits.get(decision.entry_key, (0, 0.0))
            self.hits[decision.entry_key] = (count + 1, time.time())
        self.registry.add(client, listener.name, peer)

    def _refuse(self, client: connection.Client, peer: str, reason: str, listener: str) -> None:
        client.error = f"refused: {reason}"
        self.state.count_denial(reason)
        self.denial_log.denied(peer, reason, listener, time.monotonic())
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Have the pending denial summaries written when their interval ends."""
        due = self.denial_log.next_flush()
        if due is None or self._flush_timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop: the next denial writes them
            return
        self._flush_timer = loop.call_later(max(0.0, due - time.monotonic()), self._flush_due)

    def _flush_due(self) -> None:
        self._flush_timer = None
        self.denial_log.flush(time.monotonic())
        self._schedule_flush()

    def done(self) -> None:
        """The proxy stops: write what is pending."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self.denial_log.flush(time.monotonic(), force=True)

    def drain_hits(self) -> dict[int, tuple[int, float]]:
        hits, self.hits = self.hits, {}
        return hits
