"""The running gateway's background tasks: each a small loop with one job and a name.

=====================  ==========================  ========================================
task                   interval                    job
=====================  ==========================  ========================================
state watcher          a change in the database,   notice the database's changes (the CLI,
                       an entry's expiry, 2 s;     the web app) and expiring allowlist
                       at most every               entries; swap the policy, the logins and
                       ``reload_interval``         the trusted VPN peers; the data disk
session sweeper        ``reload_interval`` while   close WebSockets of logins that ended or
                       a connection is open        went idle; an open WebSocket is activity
usage flush            1 s                         write what the proxy counted (hits every
                                                   5 s, activity every 10 s, held cut-offs)
audit purge            one hour                    delete expired sessions, bans, old audit
CEMM monitor           ``[upstream]                where the CEMM is, whether it answers,
                       health_interval``           its clock (:mod:`gateway.upstream`)
WireGuard check        2 s                         the tunnel, its firewall rule and peers
automatic backups      ``[backup] interval``       an encrypted backup (:mod:`.backup`)
=====================  ==========================  ========================================

Each module says what its job does; :func:`every` and :func:`on_change` are the loops they
share: a job that raises is logged and the task carries on, with the last good state in
force. :func:`on_change` is the loop of a task that sleeps until there is news (an
:class:`asyncio.Event`) or its next round is due, so that an idle gateway is not woken.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

from gateway.waiting import wait_at_most

logger = logging.getLogger("cemm_gateway")


async def every(interval: float, job: Callable[[], Awaitable[None]], *, what: str) -> None:
    """Run ``job`` every ``interval`` seconds (after each wait), until cancelled."""
    while True:
        await asyncio.sleep(interval)
        await guarded(job, what=what)


async def on_change(
    news: asyncio.Event,
    job: Callable[[bool], Awaitable[None]],
    *,
    quiet_for: Callable[[], float],
    interval: float,
    what: str,
    until: Callable[[], bool] = lambda: False,
) -> None:
    """Run ``job`` when ``news`` is set or ``quiet_for()`` seconds passed without it (asked
    before each wait; zero: at once), then rest ``interval`` seconds: at most one round
    every ``interval``. Until ``until()`` is true (asked before each wait) or cancelled.

    ``job`` is told whether the news came. ``news`` is cleared before the job runs: news
    during the round makes the next one due.
    """
    while not until():
        heard = await wait_at_most(news, quiet_for())
        news.clear()
        await guarded(functools.partial(job, heard), what=what)
        await asyncio.sleep(interval)


async def guarded(job: Callable[[], Awaitable[None]], *, what: str) -> None:
    """Run ``job`` once; a failure is logged and the last good state stays in force."""
    try:
        await job()
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("%s failed; the previous state stays in force", what)
