"""``/api/allowlist``: the entries, adding (or changing) one, removing one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Response

from gateway.admin.actions import allowlist as actions
from gateway.admin.api.common import (
    INVALID,
    NOT_FOUND,
    CallerDep,
    ContextDep,
    NumericId,
    Responses,
    resource_router,
)
from gateway.admin.models import (
    AllowlistAdd,
    AllowlistEntryOut,
    AllowlistOut,
    SelfLockoutOut,
    WideNetworkOut,
)

router = resource_router()
SELF_LOCKOUT: Responses = {
    409: {"model": SelfLockoutOut, "description": "Would cut off your own address"}
}
WIDE_OR_LOCKOUT: Responses = {
    409: {
        "model": SelfLockoutOut | WideNetworkOut,
        "description": "Would cut off your own address (self_lockout), or the network is "
        "0.0.0.0/0, ::/0 or a public network wider than /16 and confirm_wide is not set "
        "(wide_network)",
    }
}


@router.get("/allowlist", response_model=AllowlistOut, summary="Allowlist entries")
async def allowlist(caller: CallerDep, context: ContextDep) -> AllowlistOut:
    return await actions.allowlist_view(context, caller)


@router.post(
    "/allowlist",
    response_model=AllowlistEntryOut,
    status_code=201,
    summary="Add an entry (or change an existing network's label and expiry)",
    responses={**INVALID, **WIDE_OR_LOCKOUT},
)
async def allowlist_add(body: AllowlistAdd, caller: CallerDep, context: ContextDep) -> Any:
    entry, _ = await actions.save_allowlist_entry(
        context,
        caller,
        network=body.network,
        label=body.label,
        expires=body.expires,
        confirm_lockout=body.confirm_lockout,
        confirm_wide=body.confirm_wide,
    )
    return entry


@router.delete(
    "/allowlist/{entry_id}",
    status_code=204,
    response_class=Response,
    summary="Remove an entry",
    responses={**NOT_FOUND, **SELF_LOCKOUT},
)
async def allowlist_remove(
    entry_id: NumericId,
    caller: CallerDep,
    context: ContextDep,
    confirm_lockout: Annotated[bool, Query()] = False,
) -> Response:
    await actions.remove_allowlist_entry(context, caller, entry_id, confirm_lockout=confirm_lockout)
    return Response(status_code=204)
