"""The proxy's view of logins, kept current: :class:`Logins`.

The proxy checks every request against an :class:`~gateway.policy.credentials.AuthSnapshot`
(usable sessions and API tokens) held by :class:`~gateway.proxy.state.ProxyState`. This
module keeps that snapshot in step with the database, and closes what it no longer admits:

- **A login or a logout here** changes one session: :meth:`Logins.session_started` adds it
  to the snapshot and :meth:`Logins.session_ended` removes it (and closes the WebSockets
  it admitted), in memory, before the web app answers. No database read.
- **Any other change** (a user disabled, a role changed, a token made or revoked, a change
  by another process that the state watcher noticed) re-reads the snapshot:
  :meth:`Logins.changed` starts the read on a worker thread of its own (never on the event
  loop), and :meth:`Logins.settled` waits for it. The web app waits for it before it
  answers the request that made the change (:mod:`gateway.web.app`), so the next request
  is decided on the new snapshot. Changes noted while a read runs are applied on top of
  its result, and a change noted during a read starts one more.
- **Enforcing** (:meth:`Logins.enforce`): every connection whose WebSocket was admitted by
  a session or token that is no longer usable (ended, expired, idle) is closed. It runs
  after each change and each round of the session sweeper
  (:mod:`gateway.tasks.session_sweeper`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from gateway.auth import tokens
from gateway.clock import Clock
from gateway.policy.credentials import AuthSnapshot, SessionInfo, session_usable, token_usable
from gateway.proxy.state import ProxyState
from gateway.services import sessions
from gateway.store.worker import DbWorker

logger = logging.getLogger("cemm_gateway")

Change = Callable[[ProxyState], None]


class Connections(Protocol):
    """The live connections (``addons.connection_registry.ConnectionRegistry``)."""

    def enforce_credentials(
        self, session_ok: Callable[[str], bool], token_ok: Callable[[str], bool]
    ) -> int: ...


class Logins:
    def __init__(
        self,
        state: ProxyState,
        registry: Connections,
        worker: DbWorker,
        *,
        idle_timeout: float,
        clock: Clock,
    ) -> None:
        self._state = state
        self._registry = registry
        self._worker = worker
        self._idle_timeout = idle_timeout
        self._clock = clock
        self._generation = 0
        self._dirty = False
        self._reading: asyncio.Task[None] | None = None
        # Changes made while a read runs: applied again on top of what it read.
        self._since_read: list[Change] | None = None
        self._failure: str | None = None

    # -- one session --------------------------------------------------------------------
    def session_started(self, token: str, info: SessionInfo) -> None:
        """A login here: the session (and the cookie ``token``) admit from now on."""
        token_hash = tokens.token_hash(token)
        self._apply(lambda state: state.add_session(token_hash, info))

    def session_ended(self, session_id: str) -> None:
        """A logout or revoke here: the session admits nothing more; its WebSockets close."""
        self._apply(lambda state: state.remove_sessions({session_id}))
        self.enforce()

    def _apply(self, change: Change) -> None:
        change(self._state)
        if self._since_read is not None:
            self._since_read.append(change)

    # -- a full read --------------------------------------------------------------------
    def changed(self) -> None:
        """Something about logins changed: read the snapshot again, off the event loop."""
        self._dirty = True
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read_while_dirty(), name="logins read")

    async def settled(self) -> None:
        """Wait until the reads that :meth:`changed` started are in force."""
        while self._reading is not None and not self._reading.done():
            await asyncio.shield(self._reading)

    async def refresh(self) -> None:
        """Read the snapshot again and wait until it is in force."""
        self.changed()
        await self.settled()

    async def _read_while_dirty(self) -> None:
        while self._dirty:
            self._dirty = False
            try:
                await self._read()
            except Exception as error:
                # The last good snapshot stays in force; the state watcher tries again.
                # One warning while the same error lasts, not one per round.
                if self._failure != str(error):
                    logger.warning("could not read the logins (retrying): %s", error)
                self._failure = str(error)
                return
            self._failure = None

    async def _read(self) -> None:
        self._generation += 1
        since: list[Change] = []
        self._since_read = since
        try:
            snapshot = await self._worker.run(
                sessions.load_snapshot,
                now=self._clock.now(),
                idle_timeout=self._idle_timeout,
                generation=self._generation,
            )
        finally:
            self._since_read = None
        self._state.set_auth(snapshot)
        for change in since:
            change(self._state)
        self.enforce()

    def load(self, snapshot: AuthSnapshot) -> None:
        """Put a snapshot read elsewhere in force (the start, on the event loop's connection)."""
        self._state.set_auth(snapshot)

    # -- enforcing ----------------------------------------------------------------------
    def enforce(self) -> int:
        """Close every connection admitted by a login or token no longer usable."""
        state = self._state
        auth, activity = state.auth, state.session_activity
        now = self._clock.now()
        by_id = {info.id: info for info in auth.sessions.values()}

        def session_ok(session_id: str) -> bool:
            info = by_id.get(session_id)
            return info is not None and session_usable(
                info,
                now=now,
                last_seen=activity.get(session_id, 0.0),
                idle_timeout=auth.idle_timeout,
            )

        def token_ok(token_id: str) -> bool:
            info = auth.api_tokens.get(token_id)
            return info is not None and token_usable(info, now=now)

        return self._registry.enforce_credentials(session_ok, token_ok)
