"""Benchmark: the allowlist decision against netaddr.IPSet, in CPU time, in a few seconds.

Run: `python bench/netaddr_decision.py` (needs the bench extra: netaddr). For allowlists
of 10 and 1,000 random entries (the same generator and seed as
`bench/allowlist_decision.py`: half IPv4 /16-/32, half IPv6 /32-/128) it times, per call
and from address text, on addresses that never repeat (so the snapshot's LRU cache never
answers):

- `CompiledAllowlist.match(text)`, what the connection guard asks per connection;
- `netaddr.IPAddress(text) in netaddr.IPSet(...)`, what the design card first named.

Times are CPU time of this process (`time.process_time`), the median of five loops, so a
busy shared machine slows the run but barely moves the figures. It prints a markdown table
with the ratio IPSet / ours, and checks on every address that both answer the same.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path

import netaddr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.allowlist_decision import CASES, SEED, random_networks, sample_addresses
from gateway.policy.allowlist import AllowlistEntry, CompiledAllowlist

SIZES = (10, 1_000)
ADDRESSES = 2_000  # per case; above the snapshot's LRU cache (1,024), so every call parses
REPEATS = 5


def cpu_us_per_call(call: Callable[[str], object], addresses: list[str]) -> float:
    def loop() -> None:
        for address in addresses:
            call(address)

    loop()  # warm up
    timer = timeit.Timer(loop, timer=time.process_time)
    return statistics.median(timer.repeat(number=1, repeat=REPEATS)) / len(addresses) * 1e6


def main() -> int:
    started = time.process_time()
    rng = random.Random(SEED)
    rows = []
    for size in SIZES:
        networks = random_networks(rng, size)
        allowlist = CompiledAllowlist(
            [AllowlistEntry(index, network) for index, network in enumerate(networks)], now=0.0
        )
        ipset = netaddr.IPSet(str(network) for network in networks)

        def in_ipset(text: str, ipset: netaddr.IPSet = ipset) -> bool:
            return netaddr.IPAddress(text) in ipset

        for case in CASES:
            version = 4 if case.startswith("v4") else 6
            hit = case.endswith("hit")
            addresses = sample_addresses(rng, networks, allowlist, version, hit, ADDRESSES)
            for text in addresses:
                assert in_ipset(text) == hit == (allowlist.match(text) is not None), text
            ours = cpu_us_per_call(allowlist.match, addresses)
            theirs = cpu_us_per_call(in_ipset, addresses)
            rows.append(
                f"| {size:>5,} | {case:<7} | {ours:6.2f} | {theirs:7.2f} | {theirs / ours:5.0f}x |"
            )
    python = sys.version.split()[0]
    print(f"\nCPU microseconds per decision, new address each call (Python {python})\n")
    print("| entries | case    | ours   | IPSet   | ratio |")
    print("|------:|---------|-------:|--------:|------:|")
    print("\n".join(rows))
    print(f"\nrun took {time.process_time() - started:.1f} s of CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
