"""The audit purge: once an hour, delete what no longer counts.

Expired and long-idle sessions, brute-force records older than the gate's window, and
audit entries older than ``[auth] audit_retention_days``. The recorder writes it on its
own worker thread (:meth:`gateway.services.recorder.Recorder.purge`); a purge that fails
is retried the next hour. The first purge runs one ``reload_interval`` after the start.
"""

from __future__ import annotations

import asyncio
import functools

from gateway.services.recorder import Recorder
from gateway.settings import AuthSettings

PURGE_INTERVAL = 3600.0


class AuditPurge:
    def __init__(self, recorder: Recorder, auth: AuthSettings) -> None:
        self._recorder = recorder
        self._auth = auth

    def purge(self) -> None:
        auth = self._auth
        self._recorder.start(
            "purge",
            functools.partial(
                self._recorder.purge,
                idle_timeout=auth.session_idle_timeout,
                window=auth.bruteforce.window,
                retention_days=auth.audit_retention_days,
            ),
        )

    async def run(self, first_after: float, interval: float = PURGE_INTERVAL) -> None:
        await asyncio.sleep(first_after)
        while True:
            self.purge()
            await asyncio.sleep(interval)
