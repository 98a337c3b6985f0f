"""Settings changed at run time: the one place that checks, stores and audits them.

The rules of which value is in force are in :mod:`gateway.settings.runtime`; this module
keeps the stored values (table ``runtime_setting``, a JSON value per key) and refuses a
change the rules forbid: a key the file or the environment sets is locked
(:class:`~gateway.services.errors.Conflict`, naming where it is set), a value the setting
does not accept is :class:`~gateway.services.errors.Invalid`.

The audit entry ``settings.change`` names the keys and their new values, except the
notification receivers, whose URLs carry secrets: for those it says only how many.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.i18n import N_
from gateway.services import audit
from gateway.services.errors import Conflict, Invalid
from gateway.settings import Settings, SettingsError
from gateway.settings import runtime as rules
from gateway.store.db import transaction

#: Keys whose values are secrets: never in the audit log.
SECRET_KEYS = frozenset({"notify.urls"})


def stored(conn: sqlite3.Connection) -> dict[str, Any]:
    """Every stored run-time value, by dotted key."""
    rows = conn.execute("SELECT key, value FROM runtime_setting").fetchall()
    return {row[0]: json.loads(row[1]) for row in rows}


def in_force(conn: sqlite3.Connection, settings: Settings) -> Settings:
    """``settings`` (as loaded) with the stored values the file and environment leave room
    for: what the running gateway uses, for the CLI."""
    return rules.apply(settings, stored(conn))


def checked_changes(settings: Settings, changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` checked: every key changeable (not locked) and every value valid.

    ``settings`` are the settings as loaded. Raises Conflict for a locked key, Invalid for a
    key that cannot be changed or a value it does not take.
    """
    checked: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in rules.RUNTIME_KEYS:
            raise Invalid(N_("{key} cannot be changed at run time"), field=key, key=key)
        lock = rules.lock_of(settings, key)
        if lock is not None:
            raise Conflict(
                N_("{key} is set in {place}; change it there (it wins over the admin app)"),
                field=key,
                key=key,
                place=lock.text,
            )
        try:
            checked[key] = rules.validate(settings, key, value)
        except SettingsError as error:
            raise Invalid(str(error), field=key) from None
    return checked


def _shown(key: str, value: Any) -> Any:
    if key in SECRET_KEYS:
        return f"{len(value)} receiver(s)" if isinstance(value, list) else "(hidden)"
    return value


def save(
    conn: sqlite3.Connection,
    settings: Settings,
    changes: Mapping[str, Any],
    *,
    actor: str,
    clock: Clock = SYSTEM_CLOCK,
) -> dict[str, Any]:
    """Check and store ``changes`` (one transaction, one audit entry); the stored values
    after it. Nothing is stored when one change is refused."""
    checked = checked_changes(settings, changes)
    with transaction(conn):
        now = clock.now()
        for key, value in checked.items():
            conn.execute(
                "INSERT INTO runtime_setting (key, value, changed_at, changed_by)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " changed_at = excluded.changed_at, changed_by = excluded.changed_by",
                (key, json.dumps(value), now, actor),
            )
        if checked:
            shown = {key: _shown(key, value) for key, value in checked.items()}
            audit.record(conn, actor, "settings.change", clock=clock, settings=shown)
    return stored(conn)
