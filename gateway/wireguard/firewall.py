"""The WireGuard tunnel's firewall rule (nftables table ``inet cemm_gateway_wg``).

The rule: nothing is forwarded from or to the tunnel - container hosts usually have IP
forwarding on, and without the rule a peer could reach the LAN through the gateway - and
from the tunnel the gateway accepts only its own web, ws and admin ports (and ping).
Without the rule the interface is not brought up.

The table as nftables lists it right after it was applied is kept; :meth:`Firewall.ensure`
compares the current listing with it and applies the rule again if the table is gone or
differs (a host firewall reload that flushed the ruleset). What to do when that fails (take
the interface down) is the interface's decision (:mod:`gateway.wireguard.interface`).
Every command goes through :mod:`gateway.system.commands`.
"""

from __future__ import annotations

from gateway.system import commands

FIREWALL_TABLE = "cemm_gateway_wg"


def firewall_rules(interface: str, ports: list[int]) -> str:
    """The nftables script that (re)creates the table for ``interface`` and ``ports``."""
    port_set = ", ".join(str(port) for port in sorted(set(ports)))
    return f"""table inet {FIREWALL_TABLE}
delete table inet {FIREWALL_TABLE}
table inet {FIREWALL_TABLE} {{
    chain forward {{
        type filter hook forward priority -10; policy accept;
        iifname "{interface}" drop
        oifname "{interface}" drop
    }}
    chain input {{
        type filter hook input priority -10; policy accept;
        iifname "{interface}" ct state established,related accept
        iifname "{interface}" tcp dport {{ {port_set} }} accept
        iifname "{interface}" icmp type echo-request accept
        iifname "{interface}" icmpv6 type echo-request accept
        iifname "{interface}" drop
    }}
}}
"""


class Firewall:
    """The rule for one interface: apply it, notice when it is gone, remove it."""

    def __init__(self, interface: str, ports: list[int], runner: commands.Runner) -> None:
        self.interface = interface
        self._ports = ports
        self._run = runner
        self._applied: str | None = None  # the table as listed right after applying it

    async def listing(self) -> str | None:
        """The table as nftables lists it now; None when it does not exist."""
        result = await self._run(["nft", "list", "table", "inet", FIREWALL_TABLE], check=False)
        return result.stdout if result.returncode == 0 else None

    async def apply(self) -> None:
        """Apply the rule (raises :class:`~gateway.system.commands.CommandError`)."""
        rules = firewall_rules(self.interface, self._ports)
        await self._run(["nft", "-f", "-"], input=rules.encode())
        self._applied = await self.listing()

    async def ensure(self) -> bool:
        """Apply the rule again if it is gone or changed; True if it had to."""
        listing = await self.listing()
        if listing is not None and listing == self._applied:
            return False
        await self.apply()
        return True

    async def remove(self) -> None:
        await self._run(["nft", "delete", "table", "inet", FIREWALL_TABLE], check=False)
