"""What a backup holds: a consistent copy of the database, the data directory's files, and
a manifest - packed as the uncompressed tar archive that :mod:`gateway.backup.sealed`
encrypts.

The archive's first member is ``manifest.json``::

    {"format": "cemm-gateway-backup", "version": 1,
     "created_at": "2026-12-06T17:00:00Z", "gateway_version": "0.1.0",
     "schema_version": 4,
     "files": [{"path": "gateway.db", "size": 98304, "mode": 384, "sha256": "..."}, ...]}

followed by one regular-file member per entry of ``files``, by the path relative to the
data directory. ``gateway.db`` is taken with SQLite's online backup API (a consistent
snapshot while the gateway writes, never a file copy); every other regular file of the
data directory comes as it is: the WireGuard keys (``wireguard/``), the self-signed TLS
certificate (``tls/``), the proxy's certificate authority (``mitmproxy/``), and whatever
else a later feature keeps there (ACME material). Left out: the database's own
``-wal``/``-shm``/``-journal`` files (the snapshot has their contents), the running
instance's lock file, a mount point's ``lost+found``, data set aside by a restore
(``.replaced-*``), the automatic backups' directory when it lies inside the data directory,
and anything that is not a regular file. Files that live outside the data directory
(``.env``, the admin password file, OIDC secret files) are not in a backup.

:func:`read_archive` checks everything before anything is used: the manifest, that the
members are exactly the files it lists and match their SHA-256, that no path leaves the
data directory, that the database passes SQLite's integrity check and has the schema
version the manifest states, and that this version is not newer than this code's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import sqlite3
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gateway.backup.sealed import BackupError
from gateway.store.migrations import MIGRATIONS
from gateway.version import version

FORMAT = "cemm-gateway-backup"
MANIFEST = "manifest.json"
DATABASE = "gateway.db"
LOCK_FILE = "gateway.lock"
# A file system's own directory at the top of a mount point: never data of the gateway.
LOST_AND_FOUND = "lost+found"
REPLACED_PREFIX = ".replaced-"
_DATABASE_SIDE_FILES = {f"{DATABASE}-wal", f"{DATABASE}-shm", f"{DATABASE}-journal"}


@dataclass(frozen=True)
class Contents:
    """A backup, checked: its manifest and every file's bytes by relative path."""

    manifest: dict[str, object]
    files: dict[str, bytes]
    modes: dict[str, int]

    @property
    def schema_version(self) -> int:
        return int(str(self.manifest["schema_version"]))

    @property
    def created_at(self) -> str:
        return str(self.manifest["created_at"])

    @property
    def gateway_version(self) -> str:
        return str(self.manifest["gateway_version"])


def skipped(relative: PurePosixPath, *, excluded: tuple[Path, ...] = ()) -> bool:
    """Whether a path in the data directory is left out of a backup (and out of what a
    restore counts as existing data)."""
    first = relative.parts[0]
    return (
        first in (LOCK_FILE, LOST_AND_FOUND)
        or first.startswith(REPLACED_PREFIX)
        or (len(relative.parts) == 1 and (first == DATABASE or first in _DATABASE_SIDE_FILES))
        or any(
            relative == PurePosixPath(path) or PurePosixPath(path) in relative.parents
            for path in excluded
        )
    )


def data_files(data_dir: Path, *, excluded: tuple[Path, ...] = ()) -> Iterator[str]:
    """The relative paths of the data directory's regular files a backup holds, sorted."""
    found: list[str] = []
    for root, dirs, names in os.walk(data_dir):
        here = PurePosixPath(Path(root).relative_to(data_dir).as_posix())
        dirs[:] = [d for d in dirs if not skipped(here / d, excluded=excluded)]
        for name in names:
            relative = here / name
            if skipped(relative, excluded=excluded):
                continue
            if stat.S_ISREG(os.lstat(Path(root) / name).st_mode):
                found.append(str(relative))
    yield from sorted(found)


def database_snapshot(path: Path) -> tuple[bytes, int]:
    """A consistent copy of the database through SQLite's online backup API, and its
    schema version. Readers and writers of the running gateway go on meanwhile."""
    if not path.is_file():
        raise BackupError(f"there is no database at {path}")
    source = sqlite3.connect(path, timeout=30.0)
    copy = sqlite3.connect(":memory:")
    try:
        source.execute("PRAGMA busy_timeout = 30000")
        source.backup(copy)
        schema = int(copy.execute("PRAGMA user_version").fetchone()[0])
        return copy.serialize(), schema
    except sqlite3.Error as error:
        raise BackupError(f"cannot copy the database {path}: {error}") from None
    finally:
        copy.close()
        source.close()


def build_archive(data_dir: Path, *, excluded: tuple[Path, ...] = (), now: float) -> bytes:
    """The archive of the data directory as it is now (see the module docstring)."""
    database, schema = database_snapshot(data_dir / DATABASE)
    files: dict[str, tuple[bytes, int]] = {DATABASE: (database, 0o600)}
    for relative in data_files(data_dir, excluded=excluded):
        path = data_dir / relative
        try:
            files[relative] = (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
        except OSError as error:
            raise BackupError(f"cannot read {path}: {error.strerror}") from None
    manifest = {
        "format": FORMAT,
        "version": 1,
        "created_at": dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "gateway_version": version(),
        "schema_version": schema,
        "files": [
            {"path": name, "size": len(data), "mode": mode, "sha256": _sha256(data)}
            for name, (data, mode) in files.items()
        ],
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, MANIFEST, json.dumps(manifest, indent=1).encode(), 0o600, now)
        for name, (data, mode) in files.items():
            _add(tar, name, data, mode, now)
    return out.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int, now: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, int(now)
    tar.addfile(info, io.BytesIO(data))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_archive(archive: bytes) -> Contents:
    """The checked contents of an archive (see the module docstring)."""
    members = _members(archive)
    if MANIFEST not in members:
        raise BackupError("the backup has no manifest")
    manifest = _manifest(members.pop(MANIFEST))
    listed = manifest["files"]
    assert isinstance(listed, list)
    files: dict[str, bytes] = {}
    modes: dict[str, int] = {}
    for entry in listed:
        name = _safe_path(entry.get("path"))
        data = members.pop(name, None)
        if data is None:
            raise BackupError(f"the backup lacks {name}, which its manifest lists")
        if len(data) != entry.get("size") or _sha256(data) != entry.get("sha256"):
            raise BackupError(f"{name} in the backup does not match its manifest's checksum")
        mode = entry.get("mode")
        files[name], modes[name] = data, mode & 0o777 if isinstance(mode, int) else 0o600
    if members:
        raise BackupError(f"the backup holds files its manifest does not list: {sorted(members)}")
    if DATABASE not in files:
        raise BackupError("the backup holds no database")
    _check_database(files[DATABASE], int(str(manifest["schema_version"])))
    return Contents(manifest, files, modes)


def _members(archive: bytes) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
            for info in tar:
                if not info.isfile():
                    raise BackupError(f"the backup holds {info.name!r}, which is not a file")
                extracted = tar.extractfile(info)
                assert extracted is not None
                if info.name in members:
                    raise BackupError(f"the backup holds {info.name!r} twice")
                members[info.name] = extracted.read()
    except tarfile.TarError as error:
        raise BackupError(f"the backup's archive is damaged: {error}") from None
    return members


def _manifest(data: bytes) -> dict[str, object]:
    try:
        manifest = json.loads(data)
    except ValueError:
        raise BackupError("the backup's manifest is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("the backup's manifest is not a cemm-gateway manifest")
    if not isinstance(manifest.get("files"), list) or not all(
        isinstance(entry, dict) for entry in manifest["files"]
    ):
        raise BackupError("the backup's manifest lists no files")
    schema = manifest.get("schema_version")
    if not isinstance(schema, int):
        raise BackupError("the backup's manifest states no schema version")
    if schema > len(MIGRATIONS):
        raise BackupError(
            f"the backup was made by a newer gateway ({manifest.get('gateway_version')}, "
            f"database schema {schema}; this gateway knows schema {len(MIGRATIONS)}): "
            "restore it with that version or a later one"
        )
    return manifest


def _safe_path(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise BackupError("the backup's manifest lists a file without a path")
    path = PurePosixPath(value)
    if (
        path.is_absolute()
        or ".." in path.parts
        or str(path) != value
        or (skipped(path) and value != DATABASE)
    ):
        raise BackupError(
            f"the backup lists {value!r}, which is not a path inside the data directory"
        )
    return value


def _check_database(data: bytes, schema: int) -> None:
    conn = sqlite3.connect(":memory:")
    try:
        # An in-memory database cannot be in WAL mode: check a copy whose header says
        # "rollback journal" (bytes 18 and 19: the file format's write and read versions).
        conn.deserialize(data[:18] + b"\x01\x01" + data[20:] if len(data) > 20 else data)
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error as error:
        raise BackupError(f"the backup's database is damaged: {error}") from None
    finally:
        conn.close()
    if result != "ok":
        raise BackupError(f"the backup's database fails SQLite's integrity check: {result}")
    if found != schema:
        raise BackupError(f"the backup's database has schema {found}, its manifest says {schema}")
