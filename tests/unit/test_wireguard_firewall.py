"""gateway/wireguard/firewall.py: the tunnel's nftables rule, applied again when a host
firewall reload removed or changed it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gateway.system.commands import CommandResult
from gateway.wireguard.firewall import FIREWALL_TABLE, Firewall, firewall_rules


class FakeNft:
    def __init__(self) -> None:
        self.table: str | None = None
        self.applied = 0

    async def __call__(
        self, args: Sequence[str], *, check: bool = True, input: bytes | None = None, **_: object
    ) -> CommandResult:
        argv = tuple(args)
        if argv == ("nft", "-f", "-"):
            self.applied += 1
            self.table = (input or b"").decode().split("\n", 2)[2]
        elif argv[:2] == ("nft", "list"):
            return CommandResult(argv, 0 if self.table else 1, self.table or "", "")
        elif argv[:2] == ("nft", "delete"):
            self.table = None
        return CommandResult(argv, 0, "", "")


def test_the_rule_drops_forwarding_and_admits_only_the_gateways_ports() -> None:
    rules = firewall_rules("wg0", [8443, 80, 8090, 80])
    assert f"table inet {FIREWALL_TABLE} {{" in rules
    assert 'iifname "wg0" drop' in rules and 'oifname "wg0" drop' in rules
    assert 'iifname "wg0" tcp dport { 80, 8090, 8443 } accept' in rules


def test_a_rule_gone_or_changed_is_applied_again() -> None:
    nft = FakeNft()
    firewall = Firewall("wg0", [80], nft)

    async def scenario() -> list[bool]:
        await firewall.apply()
        results = [await firewall.ensure()]  # as applied: nothing to do
        nft.table = None  # nft flush ruleset
        results.append(await firewall.ensure())
        assert nft.table is not None
        nft.table = nft.table.replace("drop", "accept")  # someone edited it
        results.append(await firewall.ensure())
        await firewall.remove()
        return results

    assert asyncio.run(scenario()) == [False, True, True]
    assert nft.applied == 3 and nft.table is None
