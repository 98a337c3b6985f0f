"""The settings in force while the gateway runs, and changing them from the admin app.

:class:`LiveSettings` holds the settings as loaded (file and environment), the values
stored at run time, and the result (:func:`gateway.settings.runtime.apply`). A change goes:

1. checked (:func:`gateway.services.runtime_settings.checked_changes`: not locked, valid;
   then the rules across keys that start-up checks, e.g. WireGuard on needs an endpoint);
2. put into force by the parts that read it (hooks: the WireGuard switch, notifications),
   in order; a hook that refuses (a :class:`~gateway.services.errors.ServiceError`, e.g.
   the WireGuard interface cannot be made) undoes the hooks before it, and nothing is
   stored;
3. stored with its audit entry (:func:`gateway.services.runtime_settings.save`); if that
   fails (a full disk), the hooks are undone too.

So what the database says and what runs stay the same, and no restart is needed. Changes
are one at a time (a lock).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from gateway.services import runtime_settings
from gateway.services.errors import Invalid
from gateway.settings import Settings, SettingsError, check_wireguard
from gateway.settings import runtime as rules
from gateway.store.worker import DbWorker

#: ``hook(before, after)`` puts ``after`` into force; raises ServiceError to refuse.
Hook = Callable[[Settings, Settings], Awaitable[None]]


class LiveSettings:
    def __init__(self, loaded: Settings, stored: Mapping[str, Any]) -> None:
        self.loaded = loaded
        self.stored = dict(stored)
        self.current = rules.apply(loaded, self.stored)
        self._hooks: list[Hook] = []
        self._lock = asyncio.Lock()

    def source(self, key: str) -> rules.Source:
        """Where the value in force of ``key`` comes from; ``.locked`` when file or env."""
        return rules.source_of(self.loaded, self.stored, key)

    def on_change(self, hook: Hook) -> None:
        self._hooks.append(hook)

    async def change(self, db: DbWorker, changes: Mapping[str, Any], *, actor: str) -> Settings:
        """Check, put into force and store ``changes``; the settings in force after it."""
        async with self._lock:
            checked = runtime_settings.checked_changes(self.loaded, changes)
            before = self.current
            after = rules.apply(self.loaded, {**self.stored, **checked})
            try:
                check_wireguard(after)  # rules across keys, as at start
            except SettingsError as error:
                raise Invalid(str(error), field="endpoint") from None
            done: list[Hook] = []
            try:
                for hook in self._hooks:
                    await hook(before, after)
                    done.append(hook)
                stored = await db.run(runtime_settings.save, self.loaded, checked, actor=actor)
            except BaseException:
                for hook in reversed(done):
                    await hook(after, before)
                raise
            self.current, self.stored = after, stored
            return after
