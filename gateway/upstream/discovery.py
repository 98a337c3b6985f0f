"""Finding the CEMM by its MAC: the neighbour table, an optional probe, and its own word.

The CEMM gets its address from DHCP and cannot be given a static one (cemm.md), but its
MAC is fixed. :class:`Discovery` finds the address that belongs to the MAC:

1. **Candidates** are, in order: the addresses the caller suggests (where the CEMM was
   last confirmed, then ``[upstream] host``), then every neighbour-table entry
   (``ip -j neigh show``, IPv4 and IPv6) whose link-layer address is the MAC.
2. Every candidate is **asked who it is**: ``GET /api/v1/public/cemm`` must answer with
   the configured ``mac``. A neighbour entry alone is not enough (it may be stale, or the
   address may belong to someone else by now), and a device that reports a different MAC
   is never used - it only ever receives this one identity request. Candidates are asked
   concurrently; the first confirmed one in candidate order wins.
3. Only when no candidate is confirmed, and ``[upstream] probe_subnet`` is set, the
   **probe** opens one TCP connection to ``http_port`` of every address in the subnet
   (at most 1024, ``PROBE_CONCURRENCY`` at a time, ``PROBE_TIMEOUT`` each) and closes it
   without sending anything. The point is not the connection but the ARP / neighbour
   discovery it causes: afterwards the neighbour table knows every live device on the
   segment, and step 1-2 run again with the new entries. If the neighbour table cannot be
   read at all (no ``ip``), the devices that accepted the connection are asked instead
   (at most ``MAX_BLIND_CANDIDATES``).

The neighbour table is read through :mod:`gateway.system.commands` (the one module that
runs programs). :func:`link_layer_address` answers the proxy's per-connection question
"which MAC completed this handshake?" - from ``/proc/net/arp`` for IPv4 (no program run
on the hot path) and ``ip -6 neigh`` for IPv6.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.system import commands
from gateway.upstream.health import ApiCheck, parse_mac

logger = logging.getLogger("cemm_gateway.upstream")

PROBE_CONCURRENCY = 128
PROBE_TIMEOUT = 0.75
MAX_BLIND_CANDIDATES = 32
MAX_CANDIDATES = 16
ARP_TABLE = Path("/proc/net/arp")
_DEAD_STATES = frozenset({"FAILED", "INCOMPLETE", "NOARP"})


@dataclass(frozen=True)
class Neighbour:
    """One entry of the kernel's neighbour (ARP / NDP) table."""

    address: str
    mac: str | None
    device: str = ""
    states: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return self.mac is not None and not _DEAD_STATES.intersection(self.states)


def parse_neighbours(text: str) -> list[Neighbour]:
    """``ip -j neigh show`` output as :class:`Neighbour` entries (bad entries skipped)."""
    if not text.strip():
        return []
    try:
        entries = json.loads(text)
    except ValueError:
        return []
    found: list[Neighbour] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        try:
            address = str(ipaddress.ip_address(str(entry.get("dst", "")).split("%")[0]))
        except ValueError:
            continue
        states = entry.get("state", [])
        found.append(
            Neighbour(
                address=address,
                mac=parse_mac(entry.get("lladdr")),
                device=str(entry.get("dev", "")),
                states=tuple(str(s) for s in states) if isinstance(states, list) else (),
            )
        )
    return found


async def read_neighbours(runner: commands.Runner = commands.run) -> list[Neighbour]:
    """The neighbour table (IPv4 and IPv6). Raises :class:`commands.CommandError`."""
    result = await runner(["ip", "-j", "neigh", "show"], timeout=5.0)
    return parse_neighbours(result.stdout)


def parse_arp_table(text: str) -> dict[str, str]:
    """``/proc/net/arp`` as {IPv4 address: MAC}, complete entries only."""
    table: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 4:
            continue
        address, flags, mac = parts[0], parts[2], parse_mac(parts[3])
        try:
            complete = int(flags, 16) & 0x2
        except ValueError:
            continue
        if complete and mac is not None and mac != "00:00:00:00:00:00":
            table[address] = mac
    return table


def _arp_lookup(arp_table: Path, address: str) -> str | None:
    # procfs is generated in memory: reading it does not wait on a disk.
    return parse_arp_table(arp_table.read_text()).get(address)


async def link_layer_address(
    address: str,
    *,
    runner: commands.Runner = commands.run,
    arp_table: Path = ARP_TABLE,
) -> str | None:
    """The MAC the kernel uses for ``address`` now; None if it is not on the local link."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    if parsed.version == 4:
        try:
            return _arp_lookup(arp_table, str(parsed))
        except OSError:
            pass  # no procfs: ask ip below
    try:
        result = await runner(["ip", "-j", "neigh", "show", "to", str(parsed)], timeout=2.0)
    except commands.CommandError:
        return None
    for entry in parse_neighbours(result.stdout):
        if entry.address == str(parsed) and entry.usable:
            return entry.mac
    return None


Connect = Callable[[str, int, float], Awaitable[bool]]


async def tcp_connect(address: str, port: int, timeout: float) -> bool:
    """Open and close one TCP connection; True if it was accepted. Sends nothing."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    return True


def probe_addresses(subnet: str) -> list[str]:
    """Every host address of ``subnet`` (validated to at most 1024 by the settings)."""
    network = ipaddress.ip_network(subnet, strict=False)
    hosts = list(network.hosts()) if network.num_addresses > 2 else list(network)
    return [str(address) for address in hosts]


async def probe(
    subnet: str,
    port: int,
    *,
    connect: Connect = tcp_connect,
    timeout: float = PROBE_TIMEOUT,
    concurrency: int = PROBE_CONCURRENCY,
) -> list[str]:
    """Connect to ``port`` on every address of ``subnet``; the addresses that accepted.

    Bounded: ``ceil(addresses / concurrency) * timeout`` seconds at most.
    """
    addresses = probe_addresses(subnet)
    limit = asyncio.Semaphore(concurrency)

    async def one(address: str) -> bool:
        async with limit:
            return await connect(address, port, timeout)

    results = await asyncio.gather(*(one(address) for address in addresses))
    return [address for address, accepted in zip(addresses, results, strict=True) if accepted]


@dataclass
class DiscoveryResult:
    """What one search found, and what it saw on the way (for the log and the status)."""

    found: ApiCheck | None = None
    asked: list[str] = field(default_factory=list)
    foreign: list[tuple[str, str]] = field(default_factory=list)
    """(address, MAC) of devices that answered with another MAC."""
    probed: bool = False
    neighbour_error: str | None = None


class Discovery:
    """Finds the address of the device whose ``/api/v1/public/cemm`` reports ``mac``."""

    def __init__(
        self,
        *,
        mac: str,
        http_port: int,
        check: Callable[[str], Awaitable[ApiCheck]],
        probe_subnet: str = "",
        runner: commands.Runner = commands.run,
        connect: Connect = tcp_connect,
        probe_timeout: float = PROBE_TIMEOUT,
        probe_concurrency: int = PROBE_CONCURRENCY,
    ) -> None:
        self.mac = mac
        self.http_port = http_port
        self.check = check
        self.probe_subnet = probe_subnet
        self.runner = runner
        self.connect = connect
        self.probe_timeout = probe_timeout
        self.probe_concurrency = probe_concurrency
        self._skip: frozenset[str] = frozenset()

    async def _neighbour_candidates(self, result: DiscoveryResult) -> list[str] | None:
        try:
            table = await read_neighbours(self.runner)
        except commands.CommandError as error:
            result.neighbour_error = str(error)
            return None
        found = [
            ipaddress.ip_address(entry.address)
            for entry in table
            if entry.usable and entry.mac == self.mac
        ]
        # Link-local addresses need an interface to be dialled; IPv4 first, like a browser.
        return [str(a) for a in sorted(found, key=lambda a: a.version) if not a.is_link_local]

    async def _ask(
        self, addresses: Iterable[str], result: DiscoveryResult, *, limit: int = MAX_CANDIDATES
    ) -> ApiCheck | None:
        fresh = [
            a for a in dict.fromkeys(addresses) if a not in result.asked and a not in self._skip
        ][:limit]
        if not fresh:
            return None
        result.asked.extend(fresh)
        checks = await asyncio.gather(*(self.check(address) for address in fresh))
        for check in checks:
            reported = check.identity.mac if check.identity is not None else None
            if check.ok and reported is not None and reported != self.mac:
                result.foreign.append((check.address, reported))
        return next((check for check in checks if check.confirms(self.mac)), None)

    async def find(
        self, hints: Sequence[str] = (), *, allow_probe: bool = True, skip: Sequence[str] = ()
    ) -> DiscoveryResult:
        """Search once. ``skip``: addresses not to ask this time (one that just timed out
        would only cost its timeout again); ``allow_probe=False`` holds the probe back."""
        self._skip = frozenset(skip)
        result = DiscoveryResult()
        neighbours = await self._neighbour_candidates(result)
        result.found = await self._ask([*hints, *(neighbours or [])], result)
        if result.found is not None or not self.probe_subnet or not allow_probe:
            return result
        result.probed = True
        accepted = await probe(
            self.probe_subnet,
            self.http_port,
            connect=self.connect,
            timeout=self.probe_timeout,
            concurrency=self.probe_concurrency,
        )
        neighbours = await self._neighbour_candidates(result)
        if neighbours is None:
            # No neighbour table to go by: ask the devices that accepted, a bounded few.
            result.found = await self._ask(accepted, result, limit=MAX_BLIND_CANDIDATES)
        else:
            result.found = await self._ask(neighbours, result)
        return result
