"""The WireGuard interface as the operating system sees it: create, configure, watch.

Every command goes through :mod:`gateway.system.commands`. The interface uses the kernel
module when ``ip link add ... type wireguard`` works, else ``wireguard-go`` (kept as a
child process; its socket lives in ``/run/wireguard``). Desired peers are applied
atomically with ``wg syncconf``. If the interface or ``wireguard-go`` disappears,
:meth:`WireguardInterface.ensure` builds it again; if the interface is there without its
configuration (down, an address gone, another key or port), it configures it again; the
caller then re-applies the peers.

The tunnel's firewall rule lives in :mod:`gateway.wireguard.firewall`; this module
applies it before the interface comes up, and takes the interface down while the rule
cannot be applied (no tunnel without the rule).
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import json
import logging
import os
from typing import Any

from gateway.settings import WireguardSettings
from gateway.system import commands
from gateway.wireguard import config as wgconfig
from gateway.wireguard import keys
from gateway.wireguard.firewall import FIREWALL_TABLE, Firewall

logger = logging.getLogger("cemm_gateway.wireguard")

# FIREWALL_TABLE is named here too: the table is part of what the interface leaves behind.
__all__ = ["FIREWALL_TABLE", "Repair", "WireguardError", "WireguardInterface"]


class WireguardError(Exception):
    """The interface could not be set up; the message carries the failing command."""


class Repair(enum.Enum):
    """What :meth:`WireguardInterface.ensure` had to do; the value completes a log line."""

    RECREATED = "was gone; recreated it"
    RECONFIGURED = "had lost its configuration (down, address, key or port); configured it again"


class WireguardInterface:
    def __init__(
        self,
        settings: WireguardSettings,
        *,
        private_key: str,
        gateway_ports: list[int],
        runner: commands.Runner = commands.run,
    ) -> None:
        self.settings = settings
        self.name = settings.interface
        self._private_key = private_key
        self._public_key = keys.public_key(private_key)
        self._ports = gateway_ports
        self._run = runner
        self._userspace: asyncio.subprocess.Process | None = None
        self.firewall = Firewall(self.name, gateway_ports, runner)
        self.kind = "none"

    @property
    def gateway_v4(self) -> str:
        return wgconfig.gateway_address(self.settings.subnet)

    @property
    def gateway_v6(self) -> str | None:
        return wgconfig.gateway_address(self.settings.subnet6) if self.settings.subnet6 else None

    def uncovered_addresses(self, listen_host: str) -> list[str]:
        """The gateway's tunnel addresses that listeners on ``listen_host`` do not reach.

        ``""`` covers both families, ``0.0.0.0`` only IPv4, ``::`` only IPv6 (asyncio binds
        IPv6 listeners with ``IPV6_V6ONLY``), any other address neither: the proxy needs
        listeners of their own on these.
        """
        covered = {"": (4, 6), "0.0.0.0": (4,), "::": (6,)}.get(listen_host, ())
        tunnel = [self.gateway_v4, *([self.gateway_v6] if self.gateway_v6 else [])]
        return [a for a in tunnel if ipaddress.ip_address(a).version not in covered]

    async def _link(self) -> dict[str, Any] | None:
        """The interface as ``ip -j address show`` describes it; None if it is gone."""
        if self._userspace is not None and self._userspace.returncode is not None:
            return None
        result = await self._run(["ip", "-j", "address", "show", "dev", self.name], check=False)
        if result.returncode != 0:
            return None
        try:
            (link,) = json.loads(result.stdout)
        except ValueError:  # not JSON, or not one interface
            return None
        return link if isinstance(link, dict) else None

    async def _configured(self, link: dict[str, Any]) -> bool:
        """Up, with the gateway's tunnel addresses, key and port."""
        addresses = {info.get("local") for info in link.get("addr_info") or []}
        wanted = {self.gateway_v4, *([self.gateway_v6] if self.gateway_v6 else [])}
        if "UP" not in (link.get("flags") or []) or not wanted <= addresses:
            return False
        dump = await self._run(["wg", "show", self.name, "dump"], check=False)
        # The first line is the interface: private key, public key, listen port, fwmark.
        own = dump.stdout.split("\n", 1)[0].split("\t")[1:3]
        return dump.returncode == 0 and own == [self._public_key, str(self.settings.listen_port)]

    async def ensure(self) -> Repair | None:
        """Make the interface exist with its configuration; what had to be done, if anything."""
        link = await self._link()
        if link is not None and await self._configured(link):
            return None
        try:
            if link is None:
                await self._teardown_link()
                await self._create()
            await self._configure()
        except commands.CommandError as error:
            raise WireguardError(str(error)) from None
        return Repair.RECREATED if link is None else Repair.RECONFIGURED

    async def ensure_firewall(self) -> bool:
        """Apply the firewall rule again if it is gone or changed; True if it had to.

        If it cannot, the interface goes down (no tunnel without the rule) and the error is
        raised; :meth:`ensure` brings the interface up again once the rule applies.
        """
        try:
            return await self.firewall.ensure()
        except commands.CommandError as error:
            await self._run(["ip", "link", "set", "dev", self.name, "down"], check=False)
            raise WireguardError(f"{error}; interface {self.name} is down until it works") from None

    async def _create(self) -> None:
        kernel = await self._run(
            ["ip", "link", "add", "dev", self.name, "type", "wireguard"], check=False
        )
        if kernel.returncode == 0:
            self.kind = "kernel"
            return
        os.makedirs("/run/wireguard", exist_ok=True)
        # -f: stay in the foreground, as our child, so we notice when it dies.
        self._userspace = await commands.spawn(["wireguard-go", "-f", self.name])
        for _ in range(100):
            if (
                await self._run(["ip", "link", "show", "dev", self.name], check=False)
            ).returncode == 0:
                self.kind = "wireguard-go"
                return
            if self._userspace.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise commands.CommandError(
            ["wireguard-go", "-f", self.name],
            "the interface did not appear",
            stderr=commands.spawned_output(self._userspace),
        )

    async def _configure(self) -> None:
        await self.firewall.apply()
        await self._run(
            [
                "wg",
                "set",
                self.name,
                "private-key",
                "/dev/stdin",
                "listen-port",
                str(self.settings.listen_port),
            ],
            input=self._private_key.encode() + b"\n",
        )
        prefix = ipaddress.ip_network(self.settings.subnet).prefixlen
        await self._run(
            ["ip", "address", "replace", f"{self.gateway_v4}/{prefix}", "dev", self.name]
        )
        if self.gateway_v6:
            prefix6 = ipaddress.ip_network(self.settings.subnet6).prefixlen
            await self._run(
                [
                    "ip",
                    "-6",
                    "address",
                    "replace",
                    f"{self.gateway_v6}/{prefix6}",
                    "dev",
                    self.name,
                    # No duplicate address detection: the proxy can bind the address as
                    # soon as the interface is up.
                    "nodad",
                ]
            )
        await self._run(["ip", "link", "set", "dev", self.name, "up"])
        logger.info(
            "WireGuard interface %s up (%s) on UDP port %d, gateway at %s",
            self.name,
            self.kind,
            self.settings.listen_port,
            self.gateway_v4,
        )

    async def apply(self, peers: list[wgconfig.PeerState]) -> None:
        text = wgconfig.server_config(
            private_key=self._private_key, listen_port=self.settings.listen_port, peers=peers
        )
        try:
            await self._run(["wg", "syncconf", self.name, "/dev/stdin"], input=text.encode())
        except commands.CommandError as error:
            raise WireguardError(str(error)) from None

    async def resume(self, endpoints: dict[str, str]) -> None:
        """After a rebuild: send each peer a keepalive at its last known address.

        A rebuilt interface has no sessions; a phone would only notice after its own
        rekey timer (about 15 s). Knowing where each phone was, the gateway starts the
        handshake itself (setting a keepalive sends one at once).
        """
        for public_key, endpoint in endpoints.items():
            await self._run(
                [
                    "wg",
                    "set",
                    self.name,
                    "peer",
                    public_key,
                    "endpoint",
                    endpoint,
                    "persistent-keepalive",
                    "25",
                ],
                check=False,
            )

    async def stats(self) -> list[wgconfig.PeerStats]:
        result = await self._run(["wg", "show", self.name, "dump"], check=False)
        return wgconfig.parse_dump(result.stdout) if result.returncode == 0 else []

    async def _teardown_link(self) -> None:
        if self._userspace is not None:
            await commands.terminate(self._userspace)
            self._userspace = None
        await self._run(["ip", "link", "del", "dev", self.name], check=False)

    async def close(self) -> None:
        await self._teardown_link()
        await self.firewall.remove()
