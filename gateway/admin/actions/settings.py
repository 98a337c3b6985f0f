"""Run-time settings as the admin app shows and changes them: each key's value in force,
whether the file or the environment locks it and where (:mod:`gateway.settings.runtime`),
and a change put into force at once (:class:`gateway.live_settings.LiveSettings`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.admin.caller import Caller
from gateway.live_settings import LiveSettings
from gateway.services.errors import Conflict
from gateway.settings import Settings
from gateway.web.context import WebContext

NOT_RUNNING = "Run-time settings can only be changed in a running gateway."


@dataclass(frozen=True)
class SettingOut:
    """One setting as a page shows it: ``lock`` is where the file or environment sets it
    (the page shows it and no input), None when the admin app may change it."""

    key: str
    value: Any
    lock: str | None


def setting_out(live: LiveSettings | None, settings: Settings, key: str) -> SettingOut:
    section, _, name = key.rpartition(".")
    value = getattr(getattr(live.current if live else settings, section), name)
    if live is None:
        return SettingOut(key, value, "the configuration")
    source = live.source(key)
    return SettingOut(key, value, source.text if source.locked else None)


async def change_settings(
    live: LiveSettings | None,
    context: WebContext,
    caller: Caller,
    changes: Mapping[str, Any],
) -> Settings:
    """Put ``changes`` into force and store them; refusals are the service's."""
    if live is None:
        raise Conflict(NOT_RUNNING)
    return await live.change(context.db, changes, actor=caller.user_name)
