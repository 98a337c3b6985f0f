"""Encrypted backups of a gateway's data directory, and restoring them.

A backup file (``.cgbk``) is the data directory's database (a consistent online copy),
keys, certificates and a manifest (:mod:`.contents`), sealed with a passphrase in a
documented format: AES-256-GCM under Argon2id, whose parameters sit in a versioned header
(:mod:`.sealed`; ``docs/backup.md`` shows how to open one with other tools). :mod:`.restore`
puts one back - checked completely first, refused while a gateway runs on the data
directory (:mod:`.lock`), replaced data kept aside. This module joins them: making a backup
file (:func:`create`, :func:`write_file`), reading one (:func:`load`), and the automatic
backups' files (:func:`automatic_backups`, :func:`prune`).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from gateway.backup.contents import Contents, build_archive, read_archive
from gateway.backup.sealed import (
    MAX_PLAINTEXT,
    PRODUCTION_KDF,
    BackupError,
    KdfParams,
    open_sealed,
    seal,
)

__all__ = [
    "AUTOMATIC_PREFIX",
    "SUFFIX",
    "BackupError",
    "BackupFile",
    "Contents",
    "KdfParams",
    "automatic_backups",
    "create",
    "excluded_directory",
    "load",
    "prune",
    "read_backup_file",
    "read_passphrase_file",
    "write_file",
]

SUFFIX = ".cgbk"
AUTOMATIC_PREFIX = "cemm-gateway-"


def excluded_directory(data_dir: Path, directory: Path) -> tuple[Path, ...]:
    """``directory`` relative to ``data_dir`` when it lies inside it (the automatic backups'
    directory is never itself backed up, nor replaced by a restore); else nothing."""
    try:
        return (directory.resolve().relative_to(data_dir.resolve()),)
    except ValueError:
        return ()


def create(
    data_dir: Path,
    passphrase: str,
    *,
    now: float,
    excluded: tuple[Path, ...] = (),
    kdf: KdfParams = PRODUCTION_KDF,
) -> bytes:
    """The bytes of a backup file of ``data_dir`` as it is now."""
    return seal(build_archive(data_dir, excluded=excluded, now=now), passphrase, kdf=kdf)


def load(data: bytes, passphrase: str) -> Contents:
    """The checked contents of a backup file's bytes; :class:`BackupError` if anything is
    wrong (passphrase, integrity, version)."""
    return read_archive(open_sealed(data, passphrase))


def read_backup_file(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_PLAINTEXT + 1024:
            raise BackupError(f"{path} is too large to be a backup ({size} bytes)")
        return path.read_bytes()
    except OSError as error:
        raise BackupError(f"cannot read {path}: {error.strerror}") from None


def write_file(path: Path, data: bytes) -> None:
    """Write a backup file readable only by its owner; complete or not at all."""
    temporary = path.with_name(f".{path.name}.partial")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, path)
    except OSError as error:
        try:
            temporary.unlink()
        except OSError:
            pass
        raise BackupError(f"cannot write {path}: {error.strerror}") from None


def read_passphrase_file(path: Path) -> str:
    """The passphrase in a file: its first line, without the line ending."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise BackupError(f"cannot read the passphrase file {path}: {reason}") from None
    passphrase = text.splitlines()[0] if text else ""
    if not passphrase:
        raise BackupError(f"the passphrase file {path} is empty")
    return passphrase


@dataclass(frozen=True)
class BackupFile:
    path: Path
    taken_at: float


def automatic_backups(directory: Path) -> list[BackupFile]:
    """The automatic backups in ``directory``, newest first."""
    found = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    for entry in entries:
        if entry.name.startswith(AUTOMATIC_PREFIX) and entry.name.endswith(SUFFIX):
            found.append(BackupFile(Path(entry.path), _taken_at(entry)))
    return sorted(found, key=lambda backup: (backup.taken_at, backup.path.name), reverse=True)


def _taken_at(entry: os.DirEntry[str]) -> float:
    """When an automatic backup was taken: the time in its name, else its file's time."""
    stamp = entry.name[len(AUTOMATIC_PREFIX) : -len(SUFFIX)]
    try:
        return dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return entry.stat().st_mtime


def automatic_name(now: float) -> str:
    stamp = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{AUTOMATIC_PREFIX}{stamp}{SUFFIX}"


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest automatic backups; the deleted paths."""
    removed = []
    for old in automatic_backups(directory)[keep:]:
        try:
            old.path.unlink()
            removed.append(old.path)
        except OSError:
            pass
    return removed
