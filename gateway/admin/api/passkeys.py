"""``/api/passkeys``: the passkeys people made on their account page; removing one."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from gateway.admin.actions import passkeys as actions
from gateway.admin.answers import shown
from gateway.admin.api.common import (
    NOT_FOUND,
    CallerDep,
    ContextDep,
    NumericId,
    UserPath,
    UserQuery,
    resource_router,
)
from gateway.admin.models import shown_record
from gateway.services.passkeys import Passkey

router = resource_router()


@shown_record(frozen=True, kw_only=True)
class PasskeyOut(Passkey):
    # A passkey as the API answers it: the record, nothing added.
    pass


def _out(found: list[Passkey]) -> list[PasskeyOut]:
    return [shown(PasskeyOut, passkey) for passkey in found]


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
