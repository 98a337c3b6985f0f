"""Compiling the access policy the proxy enforces, from configuration and database.

The proxy never reads the database per connection. :class:`PolicyLoader` builds an
immutable :class:`PolicySnapshot` - the allowlist (configured ``default_networks`` plus the
entries in the database that have not expired), the admin allowlist and the trusted
proxies - and says when it is due for a rebuild: another process committed a change, or
an entry reached its expiry time (the caller polls the database for the former).
"""

from __future__ import annotations

import sqlite3

from gateway.clock import Clock
from gateway.policy.allowlist import AllowlistEntry, CompiledAllowlist, parse_network
from gateway.proxy.state import PolicySnapshot
from gateway.services import allowlist as allowlist_service
from gateway.settings import Settings

EntryKey = int | str


class PolicyLoader:
    def __init__(self, conn: sqlite3.Connection, settings: Settings, clock: Clock) -> None:
        self._conn = conn
        self._clock = clock
        self.default_networks = list(settings.allowlist.default_networks)
        if settings.wireguard.enabled:
            # The tunnel is in the default allowlist: peers still log in (or are trusted).
            wireguard = settings.wireguard
            self.default_networks += [s for s in (wireguard.subnet, wireguard.subnet6) if s]
        self._defaults = [
            AllowlistEntry[EntryKey](f"default:{network}", parse_network(network))
            for network in self.default_networks
        ]
        self._admin = CompiledAllowlist.from_networks(settings.allowlist.admin_networks)
        self._trusted = CompiledAllowlist.from_networks(settings.allowlist.trusted_proxies)
        self._generation = 0
        self._current: PolicySnapshot | None = None

    def stale(self) -> bool:
        """Whether an entry expired (or nothing was loaded yet): time for :meth:`load`.

        Changes written by other processes are the caller's to notice (one
        :class:`gateway.store.db.ChangeWatcher` serves every snapshot).
        """
        current = self._current
        return current is None or current.allowlist.is_stale(self._clock.now())

    def next_expiry(self) -> float | None:
        """When the policy in force goes stale by itself (an entry expires); None: never."""
        current = self._current
        return None if current is None else current.allowlist.next_expiry

    def load(self) -> PolicySnapshot:
        now = self._clock.now()
        entries: list[AllowlistEntry[EntryKey]] = list(self._defaults)
        for entry in allowlist_service.list_entries(self._conn):
            entries.append(
                AllowlistEntry[EntryKey](
                    entry.id, parse_network(entry.network), expires_at=entry.expires_at
                )
            )
        self._generation += 1
        self._current = PolicySnapshot(
            allowlist=CompiledAllowlist(entries, now=now),
            admin_allowlist=self._admin,
            trusted_proxies=self._trusted,
            generation=self._generation,
        )
        return self._current
