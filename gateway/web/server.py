"""How uvicorn serves the web app inside the gateway's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn

from gateway.waiting import wait_at_most


class AdminServer(uvicorn.Server):
    """uvicorn without its own signal handling (the gateway owns SIGTERM and SIGINT), and
    without its ten wake-ups a second: its loop refreshes the ``Date`` header once a second
    and notices ``should_exit`` at once."""

    def __init__(self, config: uvicorn.Config) -> None:
        self._exit = asyncio.Event()
        super().__init__(config)

    @property
    def should_exit(self) -> bool:
        return self._exit.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self._exit.set()
        else:
            self._exit.clear()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        # uvicorn's on_tick refreshes the Date header when the counter is a multiple of 10.
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 10) % 864000
            await wait_at_most(self._exit, 1.0)
            should_exit = await self.on_tick(counter)
