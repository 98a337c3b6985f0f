"""The database layer and the allowlist service: migrations, change notices, validation."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway import durations
from gateway.clock import ManualClock
from gateway.services import allowlist, audit
from gateway.store import db
from gateway.store.migrations import MIGRATIONS


def test_new_database_is_migrated_and_private(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "data" / "gateway.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "data" / "gateway.db").stat().st_mode) == 0o600


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    conn = db.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(db.StoreError, match="newer than this gateway knows"):
        db.connect(path)


def test_change_watcher_sees_other_connections_only(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    mine, theirs = db.connect(path), db.connect(path)
    watcher = db.ChangeWatcher(mine)
    assert not watcher.changed()
    allowlist.save_entry(mine, "203.0.113.1", actor="test")
    assert not watcher.changed()
    allowlist.save_entry(theirs, "203.0.113.2", actor="test")
    assert watcher.changed()
    assert not watcher.changed()


def test_add_list_remove_with_audit(tmp_path: Path) -> None:
    clock = ManualClock()
    conn = db.connect(tmp_path / "gateway.db")
    entry = allowlist.save_entry(
        conn, "2001:DB8::/32", actor="cli:root", label="office", expires_in=3600, clock=clock
    ).entry
    assert entry.network == "2001:db8::/32"
    assert entry.expires_at == clock.now() + 3600
    assert [e.network for e in allowlist.list_entries(conn)] == ["2001:db8::/32"]
    allowlist.remove_entry(conn, "2001:db8::/32", actor="cli:root", clock=clock)
    assert allowlist.list_entries(conn) == []
    events = [e.event for e in audit.entries(conn)]
    assert events == ["allowlist.remove", "allowlist.add"]
    with pytest.raises(allowlist.AllowlistError, match="is not on the allowlist"):
        allowlist.remove_entry(conn, "2001:db8::/32", actor="cli:root")


def test_adding_again_updates_label_and_expiry(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "gateway.db")
    allowlist.save_entry(conn, "198.51.100.7", actor="a", label="one", expires_in=60)
    entry = allowlist.save_entry(conn, "198.51.100.7/32", actor="a", label="two").entry
    assert (entry.label, entry.expires_at) == ("two", None)
    assert len(allowlist.list_entries(conn)) == 1


def test_hits_are_added(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "gateway.db")
    entry = allowlist.save_entry(conn, "198.51.100.7", actor="a").entry
    allowlist.add_hits(conn, {entry.id: (3, 100.0), 999: (1, 5.0)})
    allowlist.add_hits(conn, {entry.id: (2, 50.0)})
    (stored,) = allowlist.list_entries(conn)
    assert (stored.hits, stored.last_hit_at) == (5, 100.0)


@pytest.mark.parametrize("text", ["7d", "12h", "30m", "2w", "45s", " 3d "])
def test_durations(text: str) -> None:
    assert durations.parse_duration(text) > 0


@pytest.mark.parametrize("text", ["", "7", "0d", "-1d", "1y", "d7", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(durations.DurationError, match="for example 7d"):
        durations.parse_duration(text)
