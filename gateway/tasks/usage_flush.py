"""The usage flush: what the proxy counted in memory, written in the background.

Every :data:`LOOK_INTERVAL` seconds it looks at what is due and has the recorder
(:mod:`gateway.services.recorder`, its own worker thread; a failed write stays in memory
and goes with the next round) write it:

- revocations held in memory while the disk was full, as soon as the disk has room;
- allowlist hit counts, every :data:`HITS_INTERVAL` seconds;
- when each session and API token was last used, every :data:`ACTIVITY_INTERVAL` seconds.

The request that counted never waits for any of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.services import held
from gateway.services.recorder import Recorder
from gateway.tasks import every

LOOK_INTERVAL = 1.0
"""How often what is due is looked at (no I/O unless something is due)."""
HITS_INTERVAL = 5.0
ACTIVITY_INTERVAL = 10.0


class UsageFlush:
    def __init__(
        self,
        recorder: Recorder,
        *,
        disk_full: Callable[[], bool],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._recorder = recorder
        self._disk_full = disk_full
        self._monotonic = monotonic
        self._last_hits = self._last_activity = monotonic()

    async def flush_due(self) -> None:
        recorder = self._recorder
        if held.pending() and not self._disk_full():
            recorder.start("held", recorder.save_held)
        now = self._monotonic()
        if now - self._last_hits >= HITS_INTERVAL:
            self._last_hits = now
            recorder.start("hits", recorder.flush_hits)
        if now - self._last_activity >= ACTIVITY_INTERVAL:
            self._last_activity = now
            recorder.start("activity", recorder.flush_activity)

    async def flush_all(self, timeout: float) -> None:
        """At shutdown: what was counted since the last round, if the database takes it."""
        recorder = self._recorder
        await recorder.wait(timeout=timeout / 3)
        recorder.start("hits", recorder.flush_hits)
        recorder.start("activity", recorder.flush_activity)
        await recorder.wait(timeout=timeout * 2 / 3)

    async def run(self, interval: float = LOOK_INTERVAL) -> None:
        await every(interval, self.flush_due, what="recording what the proxy counted")
