"""The session sweeper: every ``reload_interval`` seconds while a connection is open, the
logins' time limits.

A session ends by itself when its lifetime passes or it goes unused for the idle timeout;
nothing in the database changes then, so no reload notices. Each round the sweeper:

1. marks every session with an open WebSocket as used now (an open WebSocket is activity:
   its session does not go idle while the live data flows);
2. closes every connection whose WebSocket was admitted by a login or API token that is no
   longer usable (:meth:`gateway.logins.Logins.enforce`).
"""

from __future__ import annotations

from addons.connection_registry import ConnectionRegistry
from gateway.clock import Clock
from gateway.logins import Logins
from gateway.proxy.state import ProxyState


class SessionSweeper:
    def __init__(
        self, state: ProxyState, registry: ConnectionRegistry, logins: Logins, *, clock: Clock
    ) -> None:
        self._state = state
        self._registry = registry
        self._logins = logins
        self._clock = clock

    def sweep(self) -> None:
        """One round (the two steps above)."""
        now = self._clock.now()
        for session_id in self._registry.websocket_sessions():
            self._state.touch_session(session_id, now)
        self._logins.enforce()

    async def run(self, interval: float) -> None:
        """Every ``interval`` seconds while any connection is open; with none open there
        is nothing to mark or close, and the sweeper waits for one (the registry's timer,
        :meth:`addons.connection_registry.ConnectionRegistry.while_open`)."""
        timer = self._registry.while_open(
            "sessions' time limits",
            interval=lambda: interval,
            check=lambda _monotonic: self.sweep(),
        )
        await timer.run()
