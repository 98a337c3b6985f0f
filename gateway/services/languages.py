"""Each account's language for the gateway's pages, and the home's language.

An account's choice is ``auto`` (the browser decides, :func:`gateway.i18n.choose`) or a
language with a catalog (:func:`gateway.i18n.available`); anything else is refused with
the choices. The first admin (the oldest enabled admin account) speaks for the home when
``[ui] language`` is ``auto`` (:func:`gateway.i18n.home_language`).
"""

from __future__ import annotations

import sqlite3

from gateway import i18n
from gateway.i18n import N_
from gateway.services import audit
from gateway.services.errors import Invalid, NotFound
from gateway.store.db import transaction


def check_language(language: str) -> str:
    value = language.strip().lower()
    if value != i18n.AUTO and value not in i18n.available():
        choices = ", ".join((i18n.AUTO, *i18n.available()))
        raise Invalid(
            N_("language '{language}' is unknown; choose {choices}"),
            field="language",
            language=language,
            choices=choices,
        )
    return value


def language_of(conn: sqlite3.Connection, user_id: int) -> str | None:
    """The account's choice (``auto`` when it made none), or None for no such account."""
    row = conn.execute("SELECT language FROM user WHERE id = ?", (user_id,)).fetchone()
    return str(row["language"]) if row else None


def set_language(
    conn: sqlite3.Connection, user_id: int, language: str, *, client_address: str | None = None
) -> str:
    """Set the account's language (``auto`` or an available one); returns it."""
    value = check_language(language)
    row = conn.execute("SELECT name FROM user WHERE id = ?", (user_id,)).fetchone()
    if row is None:
        raise NotFound(N_("no such user"))
    with transaction(conn):
        conn.execute("UPDATE user SET language = ? WHERE id = ?", (value, user_id))
        audit.record(
            conn, row["name"], "user.language", client_address=client_address, language=value
        )
    return value


def first_admin_language(conn: sqlite3.Connection) -> str | None:
    """The language the first enabled admin chose, or None (none chosen, or no admin)."""
    row = conn.execute(
        "SELECT language FROM user WHERE role = 'admin' AND disabled = 0 "
        "ORDER BY created_at, id LIMIT 1"
    ).fetchone()
    if row is None or row["language"] == i18n.AUTO:
        return None
    return str(row["language"])
