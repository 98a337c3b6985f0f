"""The first check: is the client's address allowed on this listener at all?

Runs in ``client_connected``, before any TLS handshake or HTTP parsing: a refused client
gets its TCP connection closed and nothing else - no ServerHello, no HTTP status, no hint
that a proxy is there. The web and ws ports use the allowlist (configured defaults plus
entries from the database); the admin port uses ``[allowlist] admin_networks``.
"""

from __future__ import annotations

import time
from collections import Counter

from mitmproxy import connection

from addons.base import fail_closed, listener_of, logger
from addons.connection_registry import ConnectionRegistry
from gateway.policy.allowlist import decide_connection
from gateway.proxy.state import ProxyState

_LOG_EVERY = 60.0


class DenialLog:
    """Logs the first denial of an (address, reason) pair, then a count once a minute."""

    def __init__(self) -> None:
        self._last_logged: dict[tuple[str, str], float] = {}
        self._suppressed: Counter[tuple[str, str]] = Counter()

    def denied(self, address: str, reason: str, listener: str, now: float) -> None:
        key = (address, reason)
        last = self._last_logged.get(key)
        if last is None or now - last >= _LOG_EVERY:
            more = self._suppressed.pop(key, 0)
            suffix = f" ({more} more since the last report)" if more else ""
            logger.warning("denied %s on the %s port: %s%s", address, listener, reason, suffix)
            self._last_logged[key] = now
            if len(self._last_logged) > 10_000:
                self._last_logged.clear()
        else:
            self._suppressed[key] += 1


class ConnectionGuard:
    def __init__(self, state: ProxyState, registry: ConnectionRegistry) -> None:
        self.state = state
        self.registry = registry
        self.denial_log = DenialLog()
        # Allowlist entry id -> (hits, last hit time), drained by the app into the database.
        self.hits: dict[int, tuple[int, float]] = {}

    @fail_closed
    def client_connected(self, client: connection.Client) -> None:
        listener = listener_of(self.state, client)
        peer = client.peername[0] if client.peername else ""
        if listener is None:
            self._refuse(client, peer, "unknown_listener", "?")
            return
        decision = decide_connection(peer, self.state.policy.allowlist_for(listener.name))
        if not decision.allowed:
            self._refuse(client, peer, decision.reason, listener.name)
            return
        if isinstance(decision.entry_key, int):
            count, _ = self.hits.get(decision.entry_key, (0, 0.0))
            self.hits[decision.entry_key] = (count + 1, time.time())
        self.registry.add(client, listener.name, peer)

    def _refuse(self, client: connection.Client, peer: str, reason: str, listener: str) -> None:
        client.error = f"refused: {reason}"
        self.state.denials[reason] += 1
        self.denial_log.denied(peer, reason, listener, time.monotonic())

    def drain_hits(self) -> dict[int, tuple[int, float]]:
        hits, self.hits = self.hits, {}
        return hits
