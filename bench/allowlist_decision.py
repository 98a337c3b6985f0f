"""Benchmark: time per allowlist accept decision, against the 10 microsecond target.

Run: `python bench/allowlist_decision.py` (from the repository root or anywhere; about
10-15 s). It builds snapshots with 10, 1,000 and 10,000 random entries (half IPv4 /16-/32,
half IPv6 /32-/128, fixed seed) and measures `decide_connection(address_text, snapshot)`
for IPv4/IPv6 hits and misses:

- repeated: the same address every call, so the snapshot's LRU cache answers;
- unique: a different address every call (more distinct addresses than the cache holds),
  so every call parses the text and bisects.

For comparison it times `netaddr.IPAddress(text) in netaddr.IPSet(...)` and the runner-up
structure, a dict of network integers per prefix length present, probed longest first
(both on unique addresses, both from address text). Each figure is the median of several
repeats of a loop over the addresses, divided by the number of calls; loop overhead
(~20 ns) is included. It prints a markdown table and PASS/MISS per row.
"""

from __future__ import annotations

import random
import socket
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from pathlib import Path

import netaddr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.policy.allowlist import (
    AllowlistEntry,
    AllowlistNetwork,
    CompiledAllowlist,
    IPVersion,
    decide_connection,
)

SEED = 20240601
SIZES = (10, 1_000, 10_000)
TARGET_US = 10.0
UNIQUE_ADDRESSES = 20_000  # well above the snapshot's LRU cache (1,024)
REPEATED_CALLS = 20_000
COMPARISON_ADDRESSES = 2_000  # IPSet costs up to ~100 us a call; keep the run bounded
REPEATS = 5
CASES = ("v4 hit", "v4 miss", "v6 hit", "v6 miss")


def random_networks(rng: random.Random, count: int) -> list[AllowlistNetwork]:
    """Half IPv4, half IPv6; the first of each family is broad so small lists have hits."""
    networks = []
    for index in range(count):
        version: IPVersion = 4 if index % 2 == 0 else 6
        bits = 32 if version == 4 else 128
        if index < 2:
            prefix = 16 if version == 4 else 48
        else:
            prefix = rng.randint(16, 32) if version == 4 else rng.randint(32, 128)
        first = rng.getrandbits(bits) >> (bits - prefix) << (bits - prefix)
        networks.append(AllowlistNetwork(version, first, prefix))
    return networks


def address_text(version: int, value: int) -> str:
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    return socket.inet_ntop(family, value.to_bytes(4 if version == 4 else 16))


def sample_addresses(
    rng: random.Random,
    networks: list[AllowlistNetwork],
    allowlist: CompiledAllowlist[int],
    version: int,
    hit: bool,
    count: int,
) -> list[str]:
    """`count` distinct addresses of one family that the snapshot does (not) contain."""
    bits = 32 if version == 4 else 128
    family = [network for network in networks if network.version == version]
    found: dict[str, None] = {}
    for _ in range(count * 20):
        if hit:
            network = rng.choice(family)
            value = network.first + rng.randrange(network.last - network.first + 1)
        else:
            value = rng.getrandbits(bits)
        text = address_text(version, value)
        if allowlist.contains(text) == hit:
            found[text] = None
            if len(found) == count:
                break
    return list(found)


class PrefixLengthDicts:
    """The runner-up structure: {prefix length: {network >> host bits}}, longest first."""

    def __init__(self, networks: Sequence[AllowlistNetwork]) -> None:
        tables: dict[tuple[int, int], set[int]] = {}
        for network in networks:
            bits = 32 if network.version == 4 else 128
            shift = bits - network.prefix_length
            tables.setdefault((network.version, shift), set()).add(network.first >> shift)
        ordered = sorted(tables.items())  # smallest shift = longest prefix first
        self.probes = {
            version: [(shift, table) for (v, shift), table in ordered if v == version]
            for version in (4, 6)
        }

    def contains(self, text: str) -> bool:
        if ":" in text:
            value = int.from_bytes(socket.inet_pton(socket.AF_INET6, text))
            version = 4 if value >> 32 == 0xFFFF else 6
        else:
            value, version = int.from_bytes(socket.inet_pton(socket.AF_INET, text)), 4
        return any(value >> shift in table for shift, table in self.probes[version])


def per_call_us(call: Callable[[str], object], addresses: list[str]) -> float:
    def loop() -> None:
        for address in addresses:
            call(address)

    loop()  # warm up (and fill the cache for the repeated case)
    seconds = statistics.median(timeit.repeat(loop, number=1, repeat=REPEATS))
    return seconds / len(addresses) * 1e6


def main() -> int:
    started = time.perf_counter()
    rng = random.Random(SEED)
    rows: list[str] = []
    notes: list[str] = []
    worst_at_largest = 0.0
    for size in SIZES:
        networks = random_networks(rng, size)
        build_started = time.perf_counter()
        allowlist = CompiledAllowlist(
            [AllowlistEntry(index, network) for index, network in enumerate(networks)], now=0.0
        )
        build_ms = (time.perf_counter() - build_started) * 1e3
        ipset = netaddr.IPSet(str(network) for network in networks)
        dicts = PrefixLengthDicts(networks)
        for case in CASES:
            version = 4 if case.startswith("v4") else 6
            hit = case.endswith("hit")
            unique = sample_addresses(rng, networks, allowlist, version, hit, UNIQUE_ADDRESSES)
            comparison = unique[:COMPARISON_ADDRESSES]
            for text in comparison[:200]:  # the comparison structures agree with ours
                assert (netaddr.IPAddress(text) in ipset) == hit == dicts.contains(text), text

            def decide(text: str, snapshot: CompiledAllowlist[int] = allowlist) -> object:
                return decide_connection(text, snapshot)

            repeated_us = per_call_us(decide, [unique[0]] * REPEATED_CALLS)
            unique_us = per_call_us(decide, unique)

            def in_ipset(text: str, ipset: netaddr.IPSet = ipset) -> bool:
                return netaddr.IPAddress(text) in ipset

            ipset_us = per_call_us(in_ipset, comparison)
            dicts_us = per_call_us(dicts.contains, comparison)
            worst = max(repeated_us, unique_us)
            if size == SIZES[-1]:
                worst_at_largest = max(worst_at_largest, worst)
            rows.append(
                f"| {size:>6,} | {case:<7} | {repeated_us:8.2f} | {unique_us:8.2f} | "
                f"{ipset_us:8.2f} | {dicts_us:8.2f} | "
                f"{'PASS' if worst < TARGET_US else 'MISS'} |"
            )
        prefix_lengths = {version: len(probes) for version, probes in dicts.probes.items()}
        notes.append(
            f"- {size:,} entries: snapshot built in {build_ms:.1f} ms; distinct prefix lengths "
            f"IPv4 {prefix_lengths[4]}, IPv6 {prefix_lengths[6]}"
        )
    print(f"\nDecision time per call in microseconds (Python {sys.version.split()[0]}).\n")
    print(
        "| entries | case    | repeated | unique   | IPSet    | dict/len | < 10 us |\n"
        "|-------:|---------|---------:|---------:|---------:|---------:|------|"
    )
    print("\n".join(rows))
    print()
    print("\n".join(notes))
    verdict = "PASS" if worst_at_largest < TARGET_US else "MISS"
    print(
        f"\n{verdict}: worst decision at {SIZES[-1]:,} entries {worst_at_largest:.2f} us "
        f"(target {TARGET_US:.0f} us); run took {time.perf_counter() - started:.0f} s"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
