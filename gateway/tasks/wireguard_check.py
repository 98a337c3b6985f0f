"""The WireGuard check: every :data:`CHECK_INTERVAL` seconds, one round of
:meth:`gateway.wireguard.manager.WireguardManager.check`.

A round deletes generated private keys older than a day, rebuilds or reconfigures the
interface if it died or lost its configuration, puts the firewall rule back
(:mod:`gateway.wireguard.firewall`), re-applies the peers when the database changed or a
peer expired, and reads handshakes and transfer for the dashboard and metrics.

Expected trouble (a command failed; its stderr is in the message) is one warning line per
round while it lasts, not a traceback.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.wireguard.interface import WireguardError
from gateway.wireguard.manager import WireguardManager

logger = logging.getLogger("cemm_gateway.wireguard")

CHECK_INTERVAL = 2.0


async def check_once(manager: WireguardManager) -> None:
    try:
        await manager.check()
    except WireguardError as error:
        logger.warning("WireGuard check failed, trying again in %g s: %s", CHECK_INTERVAL, error)
    except Exception:
        logger.exception("checking the WireGuard interface failed; trying again")


async def run(manager: WireguardManager, interval: float = CHECK_INTERVAL) -> None:
    while True:
        await asyncio.sleep(interval)
        await check_once(manager)
