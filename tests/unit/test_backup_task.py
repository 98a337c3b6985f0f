"""Automatic backups: off without a passphrase file, written and pruned, failures audited."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from gateway import backup
from gateway.settings import Settings
from gateway.settings.backup import BackupSettings
from gateway.store import db
from gateway.tasks.backup import FIRST_AFTER, AutomaticBackups

FAST = backup.KdfParams(time_cost=1, memory_kib=8, parallelism=1)


class Clock:
    def __init__(self) -> None:
        self.value = 1_800_000_000.0

    def now(self) -> float:
        return self.value


def _settings(tmp_path: Path, **backup_keys: Any) -> Settings:
    data_dir = tmp_path / "data"
    db.connect(data_dir / "gateway.db").close()
    return Settings(data_dir=data_dir, backup=BackupSettings(**backup_keys))


def test_off_without_a_passphrase_file(tmp_path: Path) -> None:
    task = AutomaticBackups(_settings(tmp_path), lambda *a, **k: None)
    status = task.status()
    assert status.off_reason == "automatic backups are off: [backup] passphrase_file is not set"
    assert status.last_at is None
    asyncio.run(asyncio.wait_for(task.run(), 1))  # returns at once


def test_written_pruned_and_not_repeated_after_a_restart(tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text("automatic\n")
    settings = _settings(tmp_path, passphrase_file=str(secret), keep=2, interval=3600)
    clock = Clock()
    task = AutomaticBackups(settings, lambda *a, **k: None, clock=clock, kdf=FAST)
    assert task.due_in() == FIRST_AFTER
    for _ in range(3):
        task.take()
        clock.value += 3600
    found = backup.automatic_backups(settings.data_dir / "backups")
    assert len(found) == 2
    assert backup.load(found[0].path.read_bytes(), "automatic").schema_version > 0
    # The backups' directory is not itself backed up.
    contents = backup.load(found[0].path.read_bytes(), "automatic")
    assert not any(name.startswith("backups/") for name in contents.files)
    clock.value = found[0].taken_at + 600
    assert task.due_in() == 3000
    assert task.status().last_file == found[0].path.name


def test_a_failed_backup_is_audited_and_shown(tmp_path: Path) -> None:
    settings = _settings(tmp_path, passphrase_file=str(tmp_path / "missing"))
    recorded: list[tuple[Any, ...]] = []
    task = AutomaticBackups(
        settings, lambda actor, event, **detail: recorded.append((actor, event, detail))
    )
    assert asyncio.run(task.take_once()) is False
    ((actor, event, detail),) = recorded
    assert (actor, event) == ("system", "backup.failed")
    assert "cannot read the passphrase file" in detail["reason"]
    assert task.status().failure == detail["reason"]
