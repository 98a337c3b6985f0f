"""Word from the kernel when network interfaces, their addresses or nftables change.

The WireGuard check must notice an interface that died or lost its addresses, and a
firewall rule that a host firewall reload flushed. Instead of starting ``ip`` and ``nft``
every two seconds to look, it listens on netlink - the channel ``ip monitor`` and
``nft monitor`` read - and looks when the kernel reports a change in the gateway's
network namespace. The messages are not parsed: any of them is a reason to look, and a
look that finds everything in order changes nothing (so causes no further messages).

Listening needs no more than the WireGuard interface already needs (``NET_ADMIN`` for
nftables' group). Where a group cannot be joined, :func:`watch` leaves it out and says
which; the caller then looks at what it cannot hear about on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

logger = logging.getLogger("cemm_gateway")

NETLINK_NETFILTER = 12
# rtnetlink multicast groups (bit masks): links, IPv4 and IPv6 addresses.
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100
# nfnetlink group 7 (NFNLGRP_NFTABLES): every ruleset change, as ``nft monitor`` shows it.
NFNLGRP_NFTABLES = 7


class KernelEvents:
    """Sets :attr:`changed` whenever the kernel reports a change it listens for."""

    def __init__(self, loop: asyncio.AbstractEventLoop, changed: asyncio.Event) -> None:
        self._loop = loop
        self._sockets: list[socket.socket] = []
        self.changed = changed
        self.links = False
        """Interfaces and addresses are heard about."""
        self.firewall = False
        """nftables changes are heard about."""

    def _listen(self, protocol: int, groups: int) -> bool:
        try:
            sock = socket.socket(
                socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, protocol
            )
        except OSError:
            return False
        try:
            sock.bind((0, groups))
        except OSError:
            sock.close()
            return False
        self._sockets.append(sock)
        self._loop.add_reader(sock.fileno(), self._drain, sock)
        return True

    def _drain(self, sock: socket.socket) -> None:
        # Until empty; an overrun (ENOBUFS) or another error also means "something changed".
        with contextlib.suppress(OSError):
            while sock.recv(65536):
                pass
        self.changed.set()

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()


def watch(changed: asyncio.Event) -> KernelEvents:
    """Set ``changed`` on interface, address and nftables changes (what can be heard)."""
    events = KernelEvents(asyncio.get_running_loop(), changed)
    events.links = events._listen(
        socket.NETLINK_ROUTE, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR
    )
    events.firewall = events._listen(NETLINK_NETFILTER, 1 << (NFNLGRP_NFTABLES - 1))
    missing = [
        what
        for what, heard in (("interfaces", events.links), ("nftables", events.firewall))
        if not heard
    ]
    if missing:
        logger.info("no netlink events for %s: looked at on a timer", " and ".join(missing))
    return events
