"""``/api/peers``: WireGuard peers, adding, changing, rotating and removing one, and its
one-time configuration link. With WireGuard off every operation answers 404."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from gateway.admin.actions import peers as actions
from gateway.admin.api.common import (
    CONFLICT,
    INVALID,
    WIREGUARD_OFF,
    CallerDep,
    ContextDep,
    PeerPath,
    WireguardDep,
    resource_router,
)
from gateway.admin.models import (
    ErrorOut,
    PeerAdd,
    PeerAdded,
    PeerChange,
    PeerConfigOut,
    PeerLinkOut,
    PeerOut,
)

router = resource_router()


@router.get(
    "/peers",
    response_model=list[PeerOut],
    summary="WireGuard peers, with their latest handshake and transfer",
    responses=WIREGUARD_OFF,
)
async def peers_list(caller: CallerDep, context: ContextDep, manager: WireguardDep) -> Any:
    return await actions.list_peers(manager, context)


@router.post(
    "/peers",
    response_model=PeerAdded,
    status_code=201,
    summary="Add a peer (a generated key pair's configuration is answered once)",
    responses={**WIREGUARD_OFF, **INVALID, **CONFLICT},
)
async def peers_add(
    body: PeerAdd, caller: CallerDep, context: ContextDep, manager: WireguardDep
) -> PeerAdded:
    return await actions.add_peer(
        manager,
        context,
        caller,
        name=body.name,
        user=body.user,
        public_key=body.public_key,
        trusted=body.trusted,
        expires=body.expires,
    )


@router.patch(
    "/peers/{name}",
    response_model=PeerOut,
    summary="Enable or disable a peer, or mark it a trusted device",
    responses={**WIREGUARD_OFF, **INVALID},
)
async def peers_change(
    name: PeerPath, body: PeerChange, caller: CallerDep, context: ContextDep, manager: WireguardDep
) -> PeerOut:
    return await actions.change_peer(
        manager, context, caller, name, enabled=body.enabled, trusted=body.trusted
    )


@router.post(
    "/peers/{name}/rotate",
    response_model=PeerConfigOut,
    summary="New keys for a peer: the old configuration stops working; the new one is answered",
    responses={**WIREGUARD_OFF, **INVALID},
)
async def peers_rotate(
    name: PeerPath, caller: CallerDep, context: ContextDep, manager: WireguardDep
) -> PeerConfigOut:
    return await actions.rotate_peer(manager, context, caller, name)


@router.delete(
    "/peers/{name}",
    status_code=204,
    response_class=Response,
    summary="Remove a peer",
    responses=WIREGUARD_OFF,
)
async def peers_remove(
    name: PeerPath, caller: CallerDep, context: ContextDep, manager: WireguardDep
) -> Response:
    await actions.remove_peer(manager, context, caller, name)
    return Response(status_code=204)


@router.post(
    "/peers/{name}/link",
    response_model=PeerLinkOut,
    status_code=201,
    summary="A one-time link to the peer's configuration (web port, no login, 15 minutes)",
    responses={
        **WIREGUARD_OFF,
        409: {"model": ErrorOut, "description": "The configuration is no longer available"},
    },
)
async def peers_link(
    name: PeerPath,
    request: Request,
    caller: CallerDep,
    context: ContextDep,
    manager: WireguardDep,
) -> PeerLinkOut:
    host = request.headers.get("x-forwarded-host") or request.headers.get("host")
    return await actions.create_peer_link(manager, context, caller, name, host=host)
