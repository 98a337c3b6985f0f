"""WireGuard peers as the admin app shows and changes them. Every operation needs the
running WireGuard manager; with ``[wireguard] enabled = false`` there is none, and each
refuses with :data:`WIREGUARD_OFF` (not found)."""

from __future__ import annotations

import time
from typing import Any

from gateway import durations
from gateway.admin.caller import Caller
from gateway.admin.models import PeerAdded, PeerConfigOut, PeerLinkOut, PeerOut
from gateway.admin.views import peer_out
from gateway.i18n import N_
from gateway.netutil import machine_names
from gateway.policy import names
from gateway.services import peers
from gateway.services.errors import NotFound
from gateway.web.context import WebContext
from gateway.wireguard.manager import WireguardManager

PEER_EXPIRY_CHOICES = ("never", "1d", "7d", "30d")
WIREGUARD_OFF = N_(
    "WireGuard is off; set [wireguard] enabled = true and endpoint in the configuration"
)


def require_wireguard(manager: WireguardManager | None) -> WireguardManager:
    if manager is None:
        raise NotFound(WIREGUARD_OFF)
    return manager


def _peer_stats(manager: WireguardManager) -> dict[str, dict[str, Any]]:
    """What the interface knows per peer name (handshake, bytes); empty if it cannot tell."""
    try:
        found = manager.status().get("peers") or []
    except Exception:  # the dashboard rule: a missing part shows as "not known"
        return {}
    return {str(p["name"]): p for p in found if isinstance(p, dict) and p.get("name")}


async def list_peers(manager: WireguardManager | None, context: WebContext) -> list[PeerOut]:
    wireguard = require_wireguard(manager)
    found = await context.db.run(peers.list_peers)
    stats = _peer_stats(wireguard)
    now = time.time()
    return [peer_out(peer, stats.get(peer.name), now=now) for peer in found]


async def add_peer(
    manager: WireguardManager | None,
    context: WebContext,
    caller: Caller,
    *,
    name: str,
    user: str | None,
    public_key: str | None,
    trusted: bool,
    expires: str,
) -> PeerAdded:
    wireguard = require_wireguard(manager)
    expires_in = durations.parse_expiry(expires)
    peer, config = await context.db.run(
        peers.add_with_config,
        name,
        wireguard,
        actor=caller.user_name,
        user_name=user or None,
        public_key=public_key or None,
        trusted=trusted,
        expires_in=expires_in,
    )
    wireguard.changed()
    return PeerAdded(peer=peer_out(peer), config=config)


async def change_peer(
    manager: WireguardManager | None,
    context: WebContext,
    caller: Caller,
    name: str,
    *,
    enabled: bool | None = None,
    trusted: bool | None = None,
) -> PeerOut:
    wireguard = require_wireguard(manager)
    peer = await context.db.run(
        peers.change, name, enabled=enabled, trusted=trusted, actor=caller.user_name
    )
    wireguard.changed()
    return peer_out(peer, _peer_stats(wireguard).get(name))


async def rotate_peer(
    manager: WireguardManager | None, context: WebContext, caller: Caller, name: str
) -> PeerConfigOut:
    wireguard = require_wireguard(manager)
    peer, config = await context.db.run(
        peers.rotate_with_config, name, wireguard, actor=caller.user_name
    )
    wireguard.changed()
    return PeerConfigOut(peer=peer_out(peer), config=config)


async def remove_peer(
    manager: WireguardManager | None, context: WebContext, caller: Caller, name: str
) -> None:
    wireguard = require_wireguard(manager)
    await context.db.run(peers.remove_peer, name, actor=caller.user_name)
    wireguard.changed()


async def peer_config(manager: WireguardManager | None, context: WebContext, name: str) -> str:
    """The configuration while the gateway still holds the generated key (else a conflict)."""
    wireguard = require_wireguard(manager)
    config: str = await context.db.run(peers.config_of, name, wireguard)
    return config


def web_url(context: WebContext, host: str | None, path: str) -> str:
    """``path`` as a whole link on the gateway's web port (gateway/policy/names.py)."""
    settings = context.settings
    return names.web_url(
        path,
        public_url=settings.listen.public_url,
        names=context.state.access.names,
        host=host,
        addresses=machine_names(settings.listen.host),
        tls=settings.tls.enabled,
        web_port=settings.listen.http_port,
    )


async def create_peer_link(
    manager: WireguardManager | None,
    context: WebContext,
    caller: Caller,
    name: str,
    *,
    host: str | None,
) -> PeerLinkOut:
    require_wireguard(manager)
    token = await context.db.run(peers.create_link, name, actor=caller.user_name)
    path = f"/.gateway/peer/{token}"
    return PeerLinkOut(
        path=path,
        url=web_url(context, host, path),
        expires_at=time.time() + peers.LINK_TTL,
    )
