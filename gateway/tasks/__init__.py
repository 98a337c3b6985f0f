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

Each module says what its job does; :func:`every` is the loop they share: a job that raises
is logged and the task carries on, with the last good state in force.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger("cemm_gateway")


async def every(interval: float, job: Callable[[], Awaitable[None]], *, what: str) -> None:
    """Run ``job`` every ``interval`` seconds (after each wait), until cancelled."""
    while True:
        await asyncio.sleep(interval)
        await guarded(job, what=what)


async def guarded(job: Callable[[], Awaitable[None]], *, what: str) -> None:
    """Run ``job`` once; a failure is logged and the last good state stays in force."""
    try:
        await job()
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("%s failed; the previous state stays in force", what)
