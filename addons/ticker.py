"""A deadline timer that does not wake an idle gateway.

The registry's client deadlines, the upstream deadlines and the logins' time limits (the
session sweeper) are checked by a timer while there is something to check. With nothing
to watch (no connection, no request waiting for the CEMM, no open WebSocket) the timer
waits for :meth:`Ticker.wake` instead of waking a few times a second for nothing: an idle
gateway on a small board stays idle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from addons.base import logger


class Ticker:
    """Run ``check(now)`` every ``interval()`` seconds while ``busy()``.

    Whoever adds something to watch calls :meth:`wake` (cheap: once set, a no-op). The
    first check after a wake comes one interval later, as a deadline can only pass after
    at least that long.
    """

    def __init__(
        self,
        name: str,
        *,
        busy: Callable[[], bool],
        interval: Callable[[], float],
        check: Callable[[float], object],
        monotonic: Callable[[], float],
    ) -> None:
        self.name = name
        self._busy = busy
        self._interval = interval
        self._check = check
        self._monotonic = monotonic
        self._work = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._work.set()

    def start(self) -> None:
        """Run in a task of its own (until :meth:`stop`)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=self.name)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def run(self) -> None:
        """The timer's loop, for a caller that runs it in its own task; until cancelled."""
        while True:
            while not self._busy():
                # Cleared before waiting: a wake() from now on ends the wait. Looked at
                # again after a wake: what was added may be gone already.
                self._work.clear()
                await self._work.wait()
            await asyncio.sleep(self._interval())
            try:
                self._check(self._monotonic())
            except Exception:  # pragma: no cover - the ticker must survive
                logger.exception("checking the %s failed", self.name)
