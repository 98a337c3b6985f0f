"""The WireGuard check: one round of :meth:`gateway.wireguard.manager.WireguardManager.check`
within :data:`CHECK_INTERVAL` seconds of a change.

A change is what the kernel reports on netlink (an interface or address added or removed,
an nftables change: :mod:`gateway.system.netlink`) or the database (peers added, changed,
removed). Between changes a round runs at a peer's expiry and every 30 s (a peer's
configuration changed by hand reports nothing; handshakes and transfer for the dashboard);
while a generated private key waits for its peer's first handshake, after a round that
failed, and where netlink cannot be heard, every :data:`CHECK_INTERVAL` seconds as before.
An idle gateway with a VPN starts no ``ip``, ``wg`` or ``nft`` between those rounds.

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

from gateway.system import netlink
from gateway.tasks import on_change
from gateway.wireguard.interface import WireguardError
from gateway.wireguard.manager import WireguardManager

logger = logging.getLogger("cemm_gateway.wireguard")

CHECK_INTERVAL = 2.0


async def check_once(manager: WireguardManager) -> bool:
    """One round; whether it succeeded (after a failure the next comes in 2 s)."""
    try:
        await manager.check()
    except WireguardError as error:
        logger.warning("WireGuard check failed, trying again in %g s: %s", CHECK_INTERVAL, error)
    except Exception:
        logger.exception("checking the WireGuard interface failed; trying again")
    else:
        return True
    return False


def _quiet_for(manager: WireguardManager, *, heard: bool, failed: bool) -> float:
    if failed:
        return 0.0
    try:
        return manager.quiet_for(heard=heard)
    except Exception:
        logger.exception("cannot tell when the WireGuard interface is next due; checking now")
        return 0.0


async def run(manager: WireguardManager, interval: float = CHECK_INTERVAL) -> None:
    """A check when something changed (the kernel or the database says so), at a peer's
    expiry and every :data:`gateway.wireguard.manager.LOOK_INTERVAL` seconds; at most one
    every ``interval`` seconds."""
    events = netlink.watch(manager.wake)
    failed = False

    def quiet_for() -> float:
        return _quiet_for(manager, heard=events.links and events.firewall, failed=failed)

    async def check(_changed: bool) -> None:
        nonlocal failed
        failed = not await check_once(manager)

    try:
        await asyncio.sleep(interval)
        # check_once logs its own failures: the guard around it never speaks.
        await on_change(
            manager.wake, check, quiet_for=quiet_for, interval=interval, what="checking WireGuard"
        )
    finally:
        events.close()
