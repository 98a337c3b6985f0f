"""Known devices: browsers (and scripts) that completed a login as an account before.

A completed login (password, and the second factor when the account has one) gives the
browser a long-lived random device token in a cookie; the database keeps only its SHA-256,
per account. A guess that comes with the token of a known device of the account it names
is counted against the device (and the account) but is not refused by the account's ban:
a stranger failing logins for the owner's account cannot lock the owner's own phone out.
The device's own failures still ban the device and its address, like anyone's.

At most ``MAX_DEVICES_PER_USER`` devices are remembered per account (the least recently
used are forgotten), and a password change forgets every device of the account but the
one that made the change (:func:`gateway.services.users.set_password`).
"""

from __future__ import annotations

import sqlite3

from gateway.auth import tokens
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.store.db import transaction

MAX_DEVICES_PER_USER = 20
DEVICE_COOKIE_LIFETIME = 400 * 86400  # the longest a browser keeps a cookie


def known_device(conn: sqlite3.Connection, token: str | None, user_name: str) -> int | None:
    """The id of the device with this token if it logged in as ``user_name`` before."""
    if not token or len(token) > 100:
        return None
    row = conn.execute(
        "SELECT known_device.id FROM known_device JOIN user ON user.id = known_device.user_id"
        " WHERE known_device.token_hash = ? AND user.name = ?",
        (tokens.token_hash(token), user_name),
    ).fetchone()
    return int(row[0]) if row else None


def remember_device(
    conn: sqlite3.Connection, token: str | None, user_id: int, *, clock: Clock = SYSTEM_CLOCK
) -> str:
    """Remember the device after a completed login; returns the token its cookie carries
    (the one it had, or a new one)."""
    if not token or len(token) > 100:
        token = tokens.new_session_token()
    now = clock.now()
    with transaction(conn):
        conn.execute(
            "INSERT INTO known_device (token_hash, user_id, created_at, last_login_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (token_hash, user_id)"
            " DO UPDATE SET last_login_at = excluded.last_login_at",
            (tokens.token_hash(token), user_id, now, now),
        )
        conn.execute(
            "DELETE FROM known_device WHERE user_id = ? AND id NOT IN (SELECT id FROM"
            " known_device WHERE user_id = ? ORDER BY last_login_at DESC, id DESC LIMIT ?)",
            (user_id, user_id, MAX_DEVICES_PER_USER),
        )
    return token
