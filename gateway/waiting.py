"""Waiting for an :class:`asyncio.Event` with a limit: the one way the gateway's idle
loops sleep until there is news or a deadline, whichever comes first.

A leaf module (the standard library only), so the proxy's addons, the store, the web
server and the background tasks can all use it.
"""

from __future__ import annotations

import asyncio
import contextlib


async def wait_at_most(event: asyncio.Event, seconds: float) -> bool:
    """Until ``event`` is set or ``seconds`` passed; whether it is set when the wait ends.

    With ``seconds`` at or below zero there is no wait: the event is only looked at.
    """
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()
