"""Backup files: the sealed format, the archive and its checks, restoring, the lock."""

from __future__ import annotations

import json
import sqlite3
import struct
import tarfile
from io import BytesIO
from pathlib import Path

import pytest

from gateway import backup
from gateway.backup import contents, lock, sealed
from gateway.backup.restore import existing_data, restore
from gateway.store import db
from gateway.store.migrations import MIGRATIONS

FAST = backup.KdfParams(time_cost=1, memory_kib=8, parallelism=1)
NOW = 1_800_000_000.0


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    conn = db.connect(directory / "gateway.db")
    conn.execute("INSERT INTO audit_log (at, actor, event) VALUES (1, 'cli:me', 'test.event')")
    conn.close()
    (directory / "wireguard").mkdir()
    (directory / "wireguard" / "vault.key").write_bytes(b"k" * 32)
    (directory / "wireguard" / "vault.key").chmod(0o600)
    (directory / "tls").mkdir()
    (directory / "tls" / "cert.pem").write_text("certificate")
    (directory / "backups").mkdir()
    (directory / "backups" / "cemm-gateway-old.cgbk").write_bytes(b"old")
    (directory / ".replaced-20260101T000000Z").mkdir()
    (directory / ".replaced-20260101T000000Z" / "gateway.db").write_bytes(b"old")
    lock.hold(directory).release()  # leaves gateway.lock behind, as a gateway does
    return directory


def _make(data_dir: Path, passphrase: str = "right horse") -> bytes:
    return backup.create(data_dir, passphrase, now=NOW, excluded=(Path("backups"),), kdf=FAST)


def test_round_trip_holds_the_database_and_the_secrets(data_dir: Path, tmp_path: Path) -> None:
    made = _make(data_dir)
    found = backup.load(made, "right horse")
    assert sorted(found.files) == ["gateway.db", "tls/cert.pem", "wireguard/vault.key"]
    assert found.schema_version == len(MIGRATIONS)
    assert found.created_at == "2027-01-15T08:00:00Z"
    target = tmp_path / "fresh"
    assert restore(found, target, force=False, now=NOW) is None
    conn = db.connect(target / "gateway.db")
    assert [tuple(r) for r in conn.execute("SELECT actor, event FROM audit_log")] == [
        ("cli:me", "test.event")
    ]
    assert (target / "wireguard" / "vault.key").read_bytes() == b"k" * 32
    assert (target / "wireguard" / "vault.key").stat().st_mode & 0o777 == 0o600


def test_left_out_lock_replaced_data_backups_and_wal_files(data_dir: Path) -> None:
    names = [
        entry["path"] for entry in backup.load(_make(data_dir), "right horse").manifest["files"]
    ]  # type: ignore[union-attr]
    assert not any(
        name.startswith((".replaced-", "backups", "gateway.lock", "gateway.db-")) for name in names
    )


def test_the_header_is_the_documented_one(data_dir: Path) -> None:
    made = _make(data_dir)
    magic, version, kdf, lanes, passes, memory = struct.unpack(">8sHBBII", made[:20])
    assert (magic, version, kdf, lanes, passes, memory) == (b"CEMMBKP\0", 1, 1, 1, 1, 8)
    (length,) = struct.unpack(">Q", made[48:56])
    assert len(made) == 72 + length


def test_wrong_passphrase(data_dir: Path) -> None:
    with pytest.raises(backup.BackupError, match="wrong passphrase"):
        backup.load(_make(data_dir), "wrong horse")


@pytest.mark.parametrize("offset", [20, 40, 60, 80, 500, -1])
def test_a_flipped_byte_is_found(data_dir: Path, offset: int) -> None:
    made = bytearray(_make(data_dir))
    made[offset] ^= 0x01
    with pytest.raises(backup.BackupError, match=r"altered|wrong passphrase|damaged"):
        backup.load(bytes(made), "right horse")


@pytest.mark.parametrize("keep", [0, 7, 71, 100, -1])
def test_a_truncated_file_is_found(data_dir: Path, keep: int) -> None:
    made = _make(data_dir)
    with pytest.raises(backup.BackupError, match=r"truncated|not a cemm-gateway backup"):
        backup.load(made[:keep], "right horse")


def test_bytes_after_the_end(data_dir: Path) -> None:
    with pytest.raises(backup.BackupError, match="unexpected bytes after its end"):
        backup.load(_make(data_dir) + b"x", "right horse")


def test_a_newer_format_is_named(data_dir: Path) -> None:
    made = bytearray(_make(data_dir))
    made[8:10] = struct.pack(">H", 2)
    with pytest.raises(backup.BackupError, match=r"newer gateway .backup format 2"):
        backup.load(bytes(made), "right horse")


def test_the_kdf_memory_is_capped(data_dir: Path) -> None:
    made = bytearray(_make(data_dir))
    made[16:20] = struct.pack(">I", 1024 * 1024)
    with pytest.raises(backup.BackupError, match="at most 64 MiB"):
        backup.load(bytes(made), "right horse")


def _resealed(archive: bytes) -> bytes:
    return sealed.seal(archive, "pw", kdf=FAST)


def _archive_with(manifest_change: dict[str, object], data_dir: Path) -> bytes:
    archive = sealed.open_sealed(_make(data_dir), "right horse")
    members = {}
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        for info in tar:
            extracted = tar.extractfile(info)
            assert extracted is not None
            members[info.name] = extracted.read()
    manifest = json.loads(members["manifest.json"]) | manifest_change
    members["manifest.json"] = json.dumps(manifest).encode()
    out = BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, BytesIO(data))
    return _resealed(out.getvalue())


def test_a_newer_schema_is_named(data_dir: Path) -> None:
    newer = _archive_with({"schema_version": len(MIGRATIONS) + 1}, data_dir)
    with pytest.raises(backup.BackupError, match="newer gateway"):
        backup.load(newer, "pw")


def test_a_path_outside_the_data_dir_is_refused(data_dir: Path) -> None:
    bad = _archive_with({"files": [{"path": "../etc/passwd", "size": 1, "sha256": "x"}]}, data_dir)
    with pytest.raises(backup.BackupError, match="not a path inside the data directory"):
        backup.load(bad, "pw")


def test_a_database_that_fails_its_check(data_dir: Path, tmp_path: Path) -> None:
    archive = sealed.open_sealed(_make(data_dir), "right horse")
    found = contents.read_archive(archive)
    broken = bytearray(found.files["gateway.db"])
    for page in range(1, len(broken) // 4096):
        broken[page * 4096] = 0x99  # not a b-tree page type
    with pytest.raises(backup.BackupError):
        contents._check_database(bytes(broken), found.schema_version)


def test_existing_data_needs_force_and_is_kept_aside(data_dir: Path) -> None:
    found = backup.load(_make(data_dir), "right horse")
    (data_dir / "extra.txt").write_text("mine")
    with pytest.raises(backup.BackupError, match=r"already holds data .*--force"):
        restore(found, data_dir, force=False, now=NOW, excluded=(Path("backups"),))
    assert (data_dir / "extra.txt").exists()
    aside = restore(found, data_dir, force=True, now=NOW, excluded=(Path("backups"),))
    assert aside is not None and aside.parent == data_dir
    assert aside.name.startswith(".replaced-")
    assert (aside / "extra.txt").read_text() == "mine"
    assert not (data_dir / "extra.txt").exists()
    assert (data_dir / "backups" / "cemm-gateway-old.cgbk").exists()  # not moved
    assert existing_data(data_dir, excluded=(Path("backups"),)) == [
        "gateway.db",
        "tls",
        "wireguard",
    ]


def test_restore_refuses_while_the_data_dir_is_held(data_dir: Path) -> None:
    found = backup.load(_make(data_dir), "right horse")
    held = lock.hold(data_dir)
    try:
        with pytest.raises(lock.DataDirInUse, match="a gateway is running"):
            restore(found, data_dir, force=True, now=NOW)
        with pytest.raises(lock.DataDirInUse):
            lock.hold(data_dir)
    finally:
        held.release()
    lock.hold(data_dir).release()


def test_a_snapshot_is_consistent_while_another_connection_writes(data_dir: Path) -> None:
    writer = sqlite3.connect(data_dir / "gateway.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO audit_log (at, actor, event) VALUES (2, 'x', 'uncommitted')")
    found = backup.load(_make(data_dir), "right horse")
    writer.execute("ROLLBACK")
    writer.close()
    copy = sqlite3.connect(":memory:")
    copy.deserialize(found.files["gateway.db"][:18] + b"\x01\x01" + found.files["gateway.db"][20:])
    assert [r[0] for r in copy.execute("SELECT event FROM audit_log")] == ["test.event"]


def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    import os

    for number in range(5):
        path = tmp_path / f"cemm-gateway-{number}.cgbk"
        path.write_bytes(b"x")
        os.utime(path, (NOW + number, NOW + number))
    (tmp_path / "other.cgbk").write_bytes(b"x")
    removed = backup.prune(tmp_path, 2)
    assert sorted(p.name for p in removed) == [f"cemm-gateway-{n}.cgbk" for n in range(3)]
    assert [b.path.name for b in backup.automatic_backups(tmp_path)] == [
        "cemm-gateway-4.cgbk",
        "cemm-gateway-3.cgbk",
    ]


def test_at_the_production_kdf_cost(data_dir: Path) -> None:
    made = backup.create(data_dir, "right horse", now=NOW)
    assert struct.unpack(">II", made[12:20]) == (3, 64 * 1024)
    assert backup.load(made, "right horse").schema_version == len(MIGRATIONS)
    with pytest.raises(backup.BackupError, match="wrong passphrase"):
        backup.load(made, "wrong horse")


def test_the_passphrase_file_is_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "pass"
    path.write_text("secret words\nignored\n")
    assert backup.read_passphrase_file(path) == "secret words"
    path.write_text("")
    with pytest.raises(backup.BackupError, match="empty"):
        backup.read_passphrase_file(path)


def test_an_older_schema_is_restored_and_migrated_on_the_next_start(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    conn = sqlite3.connect(old / "gateway.db", isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:-1], start=1):
        conn.executescript(script)
        conn.execute(f"PRAGMA user_version = {number}")
    conn.close()
    found = backup.load(backup.create(old, "pw", now=NOW, kdf=FAST), "pw")
    assert found.schema_version == len(MIGRATIONS) - 1
    restore(found, tmp_path / "new", force=False, now=NOW)
    migrated = db.connect(tmp_path / "new" / "gateway.db")
    assert migrated.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    migrated.close()


def test_lost_and_found_is_neither_data_nor_backed_up(data_dir: Path, tmp_path: Path) -> None:
    found = backup.load(_make(data_dir), "right horse")
    target = tmp_path / "mount"
    (target / "lost+found").mkdir(parents=True)
    assert existing_data(target) == []
    restore(found, target, force=False, now=NOW)
    assert (target / "lost+found").is_dir()
