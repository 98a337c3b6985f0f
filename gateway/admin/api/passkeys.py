"""``/api/passkeys``: the passkeys people made on their account page; removing one."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import BaseModel

from gateway.admin.actions import passkeys as actions
from gateway.admin.api.common import (
    NOT_FOUND,
    CallerDep,
    ContextDep,
    NumericId,
    UserPath,
    UserQuery,
    resource_router,
)
from gateway.services.passkeys import Passkey

router = resource_router()


class PasskeyOut(BaseModel):
    id: int
    user: str
    name: str
    rp_id: str
    transports: list[str]
    sign_count: int
    created_at: float
    last_used_at: float | None


def _out(found: list[Passkey]) -> list[PasskeyOut]:
    return [
        PasskeyOut(
            id=p.id,
            user=p.user_name,
            name=p.name,
            rp_id=p.rp_id,
            transports=list(p.transports),
            sign_count=p.sign_count,
            created_at=p.created_at,
            last_used_at=p.last_used_at,
        )
        for p in found
    ]


@router.get("/passkeys", response_model=list[PasskeyOut], summary="Passkeys", responses=NOT_FOUND)
async def passkeys_list(caller: CallerDep, context: ContextDep, user: UserQuery = None) -> Any:
    return _out(await actions.list_passkeys(context, user=user))


@router.get(
    "/users/{name}/passkeys",
    response_model=list[PasskeyOut],
    summary="One user's passkeys",
    responses=NOT_FOUND,
)
async def user_passkeys(name: UserPath, caller: CallerDep, context: ContextDep) -> Any:
    return _out(await actions.list_passkeys(context, user=name))


@router.delete(
    "/passkeys/{passkey_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a passkey",
    responses=NOT_FOUND,
)
async def passkeys_remove(
    passkey_id: NumericId, caller: CallerDep, context: ContextDep
) -> Response:
    await actions.remove_passkey(context, caller, passkey_id)
    return Response(status_code=204)
