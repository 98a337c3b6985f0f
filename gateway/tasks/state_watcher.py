"""The state watcher: what the database says now, within ``reload_interval`` of a change.

A round runs when the kernel says the database's files were written
(:mod:`gateway.store.file_events`), when an allowlist entry expires, and every
:data:`DISK_CHECK` seconds for the disk; at most one round every ``reload_interval``. An
idle gateway is not woken more often than that. Each round:

1. **The data disk.** Say (once) when the disk holding the data directory fills up or has
   room again; a gateway that started read-only on a full disk reopens the database for
   writing as soon as there is room, and reads what others changed meanwhile.
2. **The policy.** When another connection committed a change (the CLI, the web app's
   worker, the recorder: :class:`gateway.store.db.ChangeWatcher`) or an allowlist entry
   expired, compile the policy again, swap it in and close every connection it no longer
   admits (:meth:`addons.connection_registry.ConnectionRegistry.enforce`).
3. **The logins and the VPN.** After a committed change, read the logins again off the
   event loop (:meth:`gateway.logins.Logins.refresh`, which closes what they no longer
   admit), tell the WireGuard manager to re-apply its peers, and rebuild who needs no login
   (trusted VPN peers).

Reads only, on the event loop's read-only connection (the logins on a worker thread);
every write goes through the recorder. A read that fails (another process's lock, a full
disk) keeps the last good state in force, with one warning while it lasts.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable

from addons.connection_registry import ConnectionRegistry
from gateway.clock import Clock
from gateway.logins import Logins
from gateway.policy.access import AccessConfig
from gateway.proxy.state import ProxyState
from gateway.services.policy import PolicyLoader
from gateway.settings import Settings
from gateway.store import db, file_events
from gateway.tasks import every, on_change
from gateway.wireguard.manager import WireguardManager

logger = logging.getLogger("cemm_gateway")

DISK_CHECK = 2.0
"""How often the data disk is looked at while nothing else happens."""
SETTLE = 2.0
"""How long after the kernel's word of a write the database is read every
``reload_interval``, until the commit that wrote is surely visible."""


class StateWatcher:
    def __init__(
        self,
        conn: sqlite3.Connection,
        settings: Settings,
        *,
        clock: Clock,
        disk_full: bool,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.conn = conn
        self.disk_full = disk_full
        self.changes = db.ChangeWatcher(conn)
        self.policy_loader = PolicyLoader(conn, settings, clock)
        self._read_failure: str | None = None
        self._settling_until = 0.0
        self._reopen_failure: str | None = None

    def connect(
        self,
        state: ProxyState,
        registry: ConnectionRegistry,
        logins: Logins,
        *,
        access: Callable[[], AccessConfig],
        wireguard: WireguardManager | None,
    ) -> None:
        """What each round acts on (built after the watcher, which loads the first policy)."""
        self._state = state
        self._registry = registry
        self._logins = logins
        self._access = access
        self._wireguard = wireguard

    # -- one round --------------------------------------------------------------------
    async def watch_once(self) -> None:
        try:
            await self._check_disk()
            changed = self.changes.changed()
            if changed or self.policy_loader.stale():
                self._reload_policy()
            if changed:
                await self._logins.refresh()
                if self._wireguard is not None:
                    self._wireguard.changed()
                    self._state.set_access(self._access())
            self._read_failure = None
        except sqlite3.Error as error:
            # Another process's lock or a full disk: the last good state stays in force.
            if self._read_failure != str(error):
                logger.warning("could not read the database (retrying): %s", error)
            self._read_failure = str(error)

    def _reload_policy(self) -> None:
        policy = self.policy_loader.load()
        self._state.set_policy(policy)
        closed = self._registry.enforce(policy)
        logger.info(
            "policy reloaded (generation %d)%s",
            policy.generation,
            f"; closed {closed} connection(s)" if closed else "",
        )

    async def run(self) -> None:
        """A round when the database's files change (the kernel says so), an allowlist entry
        expires or the disk check is due; never more often than ``reload_interval``.
        Without inotify, or while the disk is full or a read failed: every
        ``reload_interval``."""
        interval, what = self.settings.reload_interval, "reloading the gateway's state"
        events = file_events.watch(self.settings.database_path)
        if events is None:
            await every(interval, self.watch_once, what=what)
            return
        try:
            await on_change(
                events.changed,
                self._round,
                quiet_for=self._quiet_for,
                interval=interval,
                what=what,
                until=lambda: events.lost,
            )
        finally:
            events.close()
        logger.warning("the database's files are no longer watched; polling them instead")
        await every(interval, self.watch_once, what=what)

    async def _round(self, written: bool) -> None:
        if written:
            # A commit's first write wakes this before the commit is visible to readers
            # (its index is updated in mapped memory, which reports nothing): look again
            # every reload_interval for a while.
            self._settling_until = time.monotonic() + SETTLE
        await self.watch_once()

    def _quiet_for(self) -> float:
        """How long nothing needs a round unless the database changes."""
        if (
            self.disk_full
            or self._read_failure is not None
            or db.read_only(self.conn)
            or time.monotonic() < self._settling_until
        ):
            return 0.0
        expiry = self.policy_loader.next_expiry()
        if expiry is None:
            return DISK_CHECK
        return min(DISK_CHECK, max(0.0, expiry - self.clock.now()))

    # -- the data disk ----------------------------------------------------------------
    async def _check_disk(self) -> None:
        """Say when the data directory's disk fills up or has room again; reopen the
        database for writing when a read-only start finds room."""
        data_dir = self.settings.data_dir
        full = db.disk_full(data_dir)
        if full and not self.disk_full:
            logger.warning(
                "%s: proxying goes on; logins and changes are refused, and session "
                "activity is kept in memory until there is room",
                db.disk_full_message(data_dir),
            )
        elif not full and self.disk_full:
            logger.info("there is room on the disk holding %s again", data_dir)
        self.disk_full = full
        if not full and db.read_only(self.conn) and self._reopen():
            # What others changed meanwhile is read now.
            self._state.set_policy(self.policy_loader.load())
            await self._logins.refresh()
            logger.info("the database is writable again")

    def _reopen(self) -> bool:
        try:
            conn = db.connect(self.settings.database_path, busy_timeout=db.SHORT_BUSY_TIMEOUT)
        except db.StoreError as error:
            if self._reopen_failure != str(error):
                logger.warning("the database is still read-only: %s", error)
            self._reopen_failure = str(error)
            return False
        self._reopen_failure = None
        if db.read_only(conn):  # still not enough room to open it for writing
            conn.close()
            return False
        old, self.conn = self.conn, conn
        self.changes = db.ChangeWatcher(conn)
        self.policy_loader = PolicyLoader(conn, self.settings, self.clock)
        old.close()
        return True

    def read_only(self) -> bool:
        return db.read_only(self.conn)

    def close(self) -> None:
        self.conn.close()
