"""The store's full-disk rules without a full disk: a read-only connection refuses every
write with "the disk holding <data_dir> is full" (also a sqlite3 error, so callers that
handle a failed write handle it), and only errors a full disk explains are called so."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.services import held, sessions, users
from gateway.store import db


def _read_only(path: Path) -> db.GatewayConnection:
    db.connect(path).close()
    return db._connect_read_only(path)


def test_a_read_only_connection_reads_and_refuses_writes_with_the_message(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.db"
    conn = _read_only(path)
    assert db.read_only(conn)
    assert conn.execute("SELECT count(*) FROM user").fetchone()[0] == 0
    with pytest.raises(db.DiskFullError) as refused:
        users.add_user(conn, "anna", role="user", password="Lang-genoeg-wachtwoord-1", actor="t")
    assert str(refused.value).startswith(f"the disk holding {tmp_path} is full")
    assert isinstance(refused.value, sqlite3.OperationalError)
    assert isinstance(refused.value, db.StoreError)


def test_only_a_full_disk_explains_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    io = sqlite3.OperationalError("disk I/O error")
    io.sqlite_errorcode = sqlite3.SQLITE_IOERR_SHMSIZE  # type: ignore[attr-defined]
    unique = sqlite3.IntegrityError("UNIQUE constraint failed")
    unique.sqlite_errorcode = sqlite3.SQLITE_CONSTRAINT_UNIQUE  # type: ignore[attr-defined]
    monkeypatch.setattr(db, "disk_full", lambda directory: False)
    assert db.is_disk_full_error(full, tmp_path)
    assert not db.is_disk_full_error(io, tmp_path)  # room on the disk: something else
    assert not db.is_disk_full_error(unique, tmp_path)
    monkeypatch.setattr(db, "disk_full", lambda directory: True)
    assert db.is_disk_full_error(io, tmp_path)
    assert not db.is_disk_full_error(unique, tmp_path)


def test_a_revocation_on_a_full_disk_is_held_in_the_gateway_and_refused_elsewhere(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.db"
    conn = db.connect(path)
    user = users.add_user(conn, "anna", role="user", password="Lang-genoeg-wachtwoord-1", actor="t")
    _, session = sessions.create_session(
        conn, user, lifetime=3600, client_address=None, user_agent=None, method="password"
    )
    conn.close()
    read_only = db._connect_read_only(path)
    # The CLI: refused, nothing held.
    with pytest.raises(db.DiskFullError):
        sessions.revoke_session(read_only, session.id, actor="cli", reason="revoked")
    before = sessions.load_snapshot(read_only, now=session.created_at, idle_timeout=3600)
    assert session.id in before.session_ids()
    held.enable()
    try:
        sessions.revoke_session(read_only, session.id, actor="admin", reason="revoked")
        snapshot = sessions.load_snapshot(read_only, now=session.created_at, idle_timeout=3600)
        assert session.id not in snapshot.session_ids()
        # Saved when there is room; then nothing is held any more.
        writable = db.connect(path)
        assert held.replay(writable) == 1
        assert held.pending() == 0
        row = writable.execute("SELECT revoked_at FROM session WHERE id = ?", (session.id,))
        assert row.fetchone()[0] is not None
        writable.close()
    finally:
        held.enable(False)
        held.clear()
        read_only.close()
