"""``/api/bans``: the active bans, lifting one."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from gateway.admin.actions import bans as actions
from gateway.admin.api.common import NOT_FOUND, CallerDep, ContextDep, NumericId, resource_router
from gateway.admin.models import BanOut

router = resource_router()


@router.get("/bans", response_model=list[BanOut], summary="Active bans")
async def bans_list(caller: CallerDep, context: ContextDep) -> Any:
    return await actions.list_bans(context)


@router.delete(
    "/bans/{ban_id}",
    status_code=204,
    response_class=Response,
    summary="Lift a ban",
    responses=NOT_FOUND,
)
async def bans_lift(ban_id: NumericId, caller: CallerDep, context: ContextDep) -> Response:
    await actions.lift_ban(context, caller, ban_id)
    return Response(status_code=204)
