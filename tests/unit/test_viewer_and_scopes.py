"""The viewer role and scoped API tokens in the store: migration, services, snapshot."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.services import api_tokens, sessions, users
from gateway.services.errors import Invalid
from gateway.store import db
from gateway.store.migrations import MIGRATIONS


def test_an_older_database_gains_the_viewer_role_and_keeps_its_sessions(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    for script in MIGRATIONS[:4]:
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(statement)
    conn.execute(
        "INSERT INTO user (name, role, created_at, updated_at) VALUES ('anna', 'admin', 1, 1)"
    )
    conn.execute(
        "INSERT INTO session (id, token_hash, user_id, csrf_token, created_at, last_seen_at,"
        " expires_at) VALUES ('s1', 'h1', 1, 'c', 1, 1, 9e9)"
    )
    conn.execute("PRAGMA user_version = 4")
    conn.close()
    conn = db.connect(path)
    assert conn.execute("SELECT count(*) FROM session").fetchone()[0] == 1
    users.add_user(conn, "vera", role="viewer", password="a long password 1", actor="t")
    assert users.require_user(conn, "vera").role == "viewer"
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO user (name, role, created_at, updated_at) VALUES ('x', 'owner', 1, 1)"
        )
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_scoped_token_reaches_the_snapshot_normalised(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "gateway.db")
    users.add_user(conn, "anna", role="viewer", password="a long password 1", actor="t")
    _, record = api_tokens.create_token(
        conn,
        "anna",
        name="ha",
        read_only=False,
        expires_in=None,
        actor="t",
        scopes=["/api/v1/public/", "/live", "/api/v1/public", "ws:/live/"],
    )
    assert record.scopes == ("/api/v1/public", "/live", "ws:/live")
    snapshot = sessions.load_snapshot(conn, now=10.0, idle_timeout=60)
    info = snapshot.api_tokens[record.id]
    assert (info.scopes, info.role) == (("/api/v1/public", "/live", "ws:/live"), "viewer")
    _, plain = api_tokens.create_token(
        conn, "anna", name="x", read_only=True, expires_in=None, actor="t"
    )
    assert plain.scopes == ()


@pytest.mark.parametrize(
    "scope",
    [
        "api/v1",
        "/a/../..",
        "/a/../b",
        "/a?x",
        "/a;b",
        "/a%252e",
        "/./a",
        "",
        "ws:",
        "ws:live",
        "ws:/a/../b",
        "ws:/a//b",
        "ws:/%61",
        "WS:/a",
    ],
)
def test_a_scope_that_is_no_plain_path_is_refused(tmp_path: Path, scope: str) -> None:
    conn = db.connect(tmp_path / "gateway.db")
    users.add_user(conn, "anna", role="user", password="a long password 1", actor="t")
    with pytest.raises(Invalid):
        api_tokens.create_token(
            conn, "anna", name="ha", read_only=False, expires_in=None, actor="t", scopes=[scope]
        )


def test_a_connection_opened_before_the_migration_sees_the_widened_check(tmp_path: Path) -> None:
    """The CHECK is rewritten in sqlite_schema; a connection that had read the old schema
    must not keep enforcing it (the schema cookie changes with the migration)."""
    path = tmp_path / "gateway.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:5]:
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(statement)
    conn.execute("PRAGMA user_version = 5")
    conn.execute(
        "INSERT INTO user (name, role, created_at, updated_at) VALUES ('anna', 'admin', 1, 1)"
    )
    with pytest.raises(sqlite3.IntegrityError):  # the old CHECK, read and cached
        conn.execute(
            "INSERT INTO user (name, role, created_at, updated_at) VALUES ('v0', 'viewer', 1, 1)"
        )
    migrated = db.connect(path)
    assert migrated.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    conn.execute(
        "INSERT INTO user (name, role, created_at, updated_at) VALUES ('vera', 'viewer', 1, 1)"
    )
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO user (name, role, created_at, updated_at) VALUES ('x', 'owner', 1, 1)"
        )
    assert users.require_user(migrated, "vera").role == "viewer"
    conn.close()
    migrated.close()
