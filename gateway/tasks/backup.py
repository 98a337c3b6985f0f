"""Automatic backups: every ``[backup] interval`` an encrypted backup of the data directory
into ``[backup] directory``, keeping the ``keep`` newest.

Without ``[backup] passphrase_file`` they are off, and the dashboard says why. The next
backup is due ``interval`` after the newest one in the directory, so a restart does not make
an extra one; the first is taken a minute after start when none is there. The work (the
database's online copy, the KDF, the encryption) runs on a thread, so the proxy never waits
for it. A backup that fails is audited (``backup.failed``, with the reason), logged, shown
on the dashboard until one succeeds, and retried after ``RETRY_AFTER``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway import backup
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.i18n import N_
from gateway.settings import Settings
from gateway.status import BackupStatus

logger = logging.getLogger("cemm_gateway")

FIRST_AFTER = 60.0
RETRY_AFTER = 3600.0
ACTOR = "system"

RecordAudit = Callable[..., None]


def excluded(settings: Settings) -> tuple[Path, ...]:
    """The backups' own directory, when it lies inside the data directory."""
    return backup.excluded_directory(settings.data_dir, settings.backup_directory)


class AutomaticBackups:
    def __init__(
        self,
        settings: Settings,
        record_audit: RecordAudit,
        *,
        clock: Clock = SYSTEM_CLOCK,
        kdf: backup.KdfParams | None = None,
    ) -> None:
        self.settings = settings
        self._record_audit = record_audit
        self._clock = clock
        self._kdf = kdf or backup.KdfParams()
        self.failure: str | None = None
        self.failed_at: float | None = None

    @property
    def off_reason(self) -> str | None:
        if not self.settings.backup.passphrase_file:
            return N_("automatic backups are off: [backup] passphrase_file is not set")
        return None

    def status(self) -> BackupStatus:
        newest = backup.automatic_backups(self.settings.backup_directory)
        return BackupStatus(
            directory=str(self.settings.backup_directory),
            last_at=newest[0].taken_at if newest else None,
            last_file=newest[0].path.name if newest else None,
            off_reason=self.off_reason,
            failure=self.failure,
            failed_at=self.failed_at,
        )

    def take(self) -> Path:
        """Make one backup now and prune the old ones (blocking; run it on a thread)."""
        settings = self.settings
        passphrase = backup.read_passphrase_file(Path(settings.backup.passphrase_file))
        directory = settings.backup_directory
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as error:
            raise backup.BackupError(f"cannot create {directory}: {error.strerror}") from None
        now = self._clock.now()
        data = backup.create(
            settings.data_dir, passphrase, now=now, excluded=excluded(settings), kdf=self._kdf
        )
        path = directory / backup.automatic_name(now)
        backup.write_file(path, data)
        backup.prune(directory, settings.backup.keep)
        return path

    async def take_once(self) -> bool:
        """One automatic backup; False (audited, shown) when it fails."""
        try:
            path = await asyncio.to_thread(self.take)
        except Exception as error:  # any failure is reported, the loop goes on
            reason = str(error) or type(error).__name__
            self.failure, self.failed_at = reason, self._clock.now()
            logger.error("automatic backup failed: %s", reason)
            self._record_audit(ACTOR, "backup.failed", reason=reason)
            return False
        self.failure = self.failed_at = None
        logger.info("automatic backup written: %s", path)
        return True

    def due_in(self) -> float:
        newest = backup.automatic_backups(self.settings.backup_directory)
        if not newest:
            return FIRST_AFTER
        return max(
            FIRST_AFTER, newest[0].taken_at + self.settings.backup.interval - self._clock.now()
        )

    async def run(self) -> Any:
        if self.off_reason is not None:
            logger.info("%s", self.off_reason)
            return
        while True:
            await asyncio.sleep(self.due_in())
            if not await self.take_once():
                await asyncio.sleep(min(RETRY_AFTER, self.settings.backup.interval))
