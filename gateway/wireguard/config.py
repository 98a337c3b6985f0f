"""What the interface and the phones should look like, as text: pure functions.

- :func:`client_config`: the ``.conf`` a phone imports. ``AllowedIPs`` is the gateway's
  tunnel addresses only (IPv4, and IPv6 with ``subnet6``; the proxy listens on both), so
  the phone sends nothing else through the tunnel; the ``PersistentKeepalive`` keeps its
  NAT mapping open.
- :func:`server_config`: the peers section for ``wg syncconf`` (applied atomically:
  peers not listed are removed, changed ones updated, others untouched).
- :func:`next_free_address`: the lowest unused host address of the tunnel subnet (the
  first one is the gateway's).
- :func:`parse_dump`: per-peer handshake and transfer from ``wg show <if> dump``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class PeerState:
    public_key: str
    preshared_key: str | None
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class PeerStats:
    public_key: str
    endpoint: str | None
    latest_handshake: float | None
    rx_bytes: int
    tx_bytes: int


def gateway_address(subnet: str) -> str:
    network = ipaddress.ip_network(subnet)
    return str(next(network.hosts()))


def next_free_address(subnet: str, used: Iterable[str]) -> str:
    network = ipaddress.ip_network(subnet)
    taken = {ipaddress.ip_address(address) for address in used}
    hosts = network.hosts()
    next(hosts)  # the gateway's
    for candidate in hosts:
        if candidate not in taken:
            return str(candidate)
    raise ValueError(f"the tunnel subnet {subnet} is full; choose a larger [wireguard] subnet")


def client_config(
    *,
    private_key: str,
    address_v4: str,
    address_v6: str | None,
    server_public_key: str,
    preshared_key: str | None,
    endpoint: str,
    gateway_v4: str,
    gateway_v6: str | None,
    keepalive: int,
) -> str:
    addresses = [f"{address_v4}/32"] + ([f"{address_v6}/128"] if address_v6 else [])
    allowed = [f"{gateway_v4}/32"] + ([f"{gateway_v6}/128"] if gateway_v6 else [])
    lines = [
        "[Interface]",
        f"PrivateKey = {private_key}",
        f"Address = {', '.join(addresses)}",
        "",
        "[Peer]",
        f"PublicKey = {server_public_key}",
    ]
    if preshared_key:
        lines.append(f"PresharedKey = {preshared_key}")
    lines += [f"AllowedIPs = {', '.join(allowed)}", f"Endpoint = {endpoint}"]
    if keepalive:
        lines.append(f"PersistentKeepalive = {keepalive}")
    return "\n".join(lines) + "\n"


def server_config(*, private_key: str, listen_port: int, peers: Iterable[PeerState]) -> str:
    lines = ["[Interface]", f"PrivateKey = {private_key}", f"ListenPort = {listen_port}"]
    for peer in peers:
        lines += ["", "[Peer]", f"PublicKey = {peer.public_key}"]
        if peer.preshared_key:
            lines.append(f"PresharedKey = {peer.preshared_key}")
        hosts = [f"{a}/{32 if ':' not in a else 128}" for a in peer.addresses]
        lines.append(f"AllowedIPs = {', '.join(hosts)}")
    return "\n".join(lines) + "\n"


def parse_dump(text: str) -> list[PeerStats]:
    """Peers from ``wg show <interface> dump`` (the first line is the interface)."""
    peers = []
    for line in text.splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) < 8:
            continue
        handshake = int(fields[4]) if fields[4].isdigit() else 0
        peers.append(
            PeerStats(
                public_key=fields[0],
                endpoint=None if fields[2] == "(none)" else fields[2],
                latest_handshake=float(handshake) if handshake else None,
                rx_bytes=int(fields[5]) if fields[5].isdigit() else 0,
                tx_bytes=int(fields[6]) if fields[6].isdigit() else 0,
            )
        )
    return peers
