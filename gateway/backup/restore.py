"""Putting a backup back into a data directory - all of it, or nothing.

:func:`restore` first reads and checks the whole backup (passphrase, integrity, schema
version: :func:`gateway.backup.contents.read_archive`), then takes the data directory's
lock (:mod:`gateway.backup.lock`: it refuses while a gateway runs there), then refuses if
the directory already holds data unless ``force``. Only then does it change anything: what
was there is moved aside into ``<data_dir>/.replaced-<UTC time>/`` (inside the directory,
so this works when it is a mount point; a backup never includes it), and the backup's files
are written (each to a temporary name, synced, then renamed). If writing fails, what was
written is removed and the replaced data moved back.

A database from an older schema is restored as it is; the gateway migrates it when it next
starts. The automatic backups' directory, when inside the data directory, is neither counted
as data nor moved.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path, PurePosixPath

from gateway.backup import lock
from gateway.backup.contents import Contents, skipped
from gateway.backup.sealed import BackupError


def existing_data(data_dir: Path, *, excluded: tuple[Path, ...] = ()) -> list[str]:
    """The top-level names in the data directory that a restore would replace."""
    if not data_dir.is_dir():
        return []
    names = []
    for entry in sorted(os.listdir(data_dir)):
        relative = PurePosixPath(entry)
        is_database = entry.startswith("gateway.db")
        if is_database or not skipped(relative, excluded=excluded):
            names.append(entry)
    return names


def restore(
    contents: Contents,
    data_dir: Path,
    *,
    force: bool,
    now: float,
    excluded: tuple[Path, ...] = (),
) -> Path | None:
    """Write ``contents`` into ``data_dir``; where the replaced data went (None if none)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    held = lock.hold(data_dir)
    try:
        present = existing_data(data_dir, excluded=excluded)
        if present and not force:
            raise BackupError(
                f"the data directory {data_dir} already holds data ({', '.join(present)}); "
                f"nothing was changed. Give --force to replace it: what is there now is "
                f"kept in {data_dir}/.replaced-<time>/"
            )
        aside = _move_aside(data_dir, present, now) if present else None
        try:
            _write(contents, data_dir)
        except OSError as error:
            _undo(contents, data_dir, aside, present)
            raise BackupError(
                f"cannot write into {data_dir}: {error.strerror}; the previous data was put back"
            ) from None
        return aside
    finally:
        held.release()


def _move_aside(data_dir: Path, names: list[str], now: float) -> Path:
    stamp = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = data_dir / f".replaced-{stamp}"
    suffix = 1
    while aside.exists():
        suffix += 1
        aside = data_dir / f".replaced-{stamp}-{suffix}"
    aside.mkdir(mode=0o700)
    for name in names:
        os.rename(data_dir / name, aside / name)
    _sync_dir(data_dir)
    return aside


def _write(contents: Contents, data_dir: Path) -> None:
    for name, data in contents.files.items():
        target = data_dir / name
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = target.with_name(f".{target.name}.restoring")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, contents.modes.get(name, 0o600))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, target)
        _sync_dir(target.parent)


def _undo(contents: Contents, data_dir: Path, aside: Path | None, names: list[str]) -> None:
    for name in contents.files:
        for path in (data_dir / name, (data_dir / name).with_name(f".{Path(name).name}.restoring")):
            try:
                path.unlink()
            except OSError:
                pass
    if aside is not None:
        for name in names:
            try:
                os.rename(aside / name, data_dir / name)
            except OSError:
                pass


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
