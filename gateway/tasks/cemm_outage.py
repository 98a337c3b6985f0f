"""The CEMM outage watch: tells the owner when the CEMM has not answered for
``[notify] cemm_down_after`` seconds (``upstream.down``) and when it answers again after
that (``upstream.up``).

It reads what the CEMM monitor (:mod:`gateway.tasks.cemm_monitor`) last learnt, once a
second; a CEMM that is gone for less than ``cemm_down_after`` (a restart, a short Wi-Fi
drop) is not news.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from gateway.notify.message import Notice, duration
from gateway.upstream.monitor import UpstreamMonitor

INTERVAL = 1.0


class OutageWatch:
    def __init__(
        self,
        monitor: UpstreamMonitor,
        notify: Callable[[Notice], None],
        *,
        down_after: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.monitor = monitor
        self._notify = notify
        self.down_after = down_after
        self._clock = clock
        self.down_since: float | None = None
        self.told = False

    def check(self) -> None:
        health = self.monitor.health
        now = self._clock()
        if health.http.up:
            if self.told and self.down_since is not None:
                gone = duration(now - self.down_since)
                self._notify(Notice("upstream.up", now, detail={"duration": gone}))
            self.down_since, self.told = None, False
            return
        if self.down_since is None:
            self.down_since = now
        if not self.told and now - self.down_since >= self.down_after:
            self.told = True
            detail = {
                "duration": duration(now - self.down_since),
                "error": health.http.error or health.unavailable_text(),
            }
            self._notify(Notice("upstream.down", now, detail=detail))

    async def run(self, interval: float = INTERVAL) -> None:
        while True:
            await asyncio.sleep(interval)
            self.check()
