"""``/api/users``: accounts, their role, password, second factor and sessions."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from gateway.admin.actions import users as actions
from gateway.admin.api.common import (
    CONFLICT,
    INVALID,
    NOT_FOUND,
    CallerDep,
    ContextDep,
    UserPath,
    resource_router,
)
from gateway.admin.models import (
    PasswordSet,
    PasswordSetOut,
    RevokedCount,
    UserAdd,
    UserAdded,
    UserChange,
    UserOut,
)

router = resource_router()


@router.get("/users", response_model=list[UserOut], summary="Users")
async def users_list(caller: CallerDep, context: ContextDep) -> Any:
    return await actions.list_users(context)


@router.post(
    "/users",
    response_model=UserAdded,
    status_code=201,
    summary="Add a user",
    responses={**INVALID, **CONFLICT},
)
async def users_add(body: UserAdd, caller: CallerDep, context: ContextDep) -> UserAdded:
    added = await actions.add_user(
        context, caller, name=body.name, role=body.role, password=body.password
    )
    return UserAdded(user=added.user, generated_password=added.generated_password)


@router.get("/users/{name}", response_model=UserOut, summary="One user", responses=NOT_FOUND)
async def users_get(name: UserPath, caller: CallerDep, context: ContextDep) -> Any:
    return await actions.get_user(context, name)


@router.patch(
    "/users/{name}",
    response_model=UserOut,
    summary="Change a user's role or disable/enable it",
    responses={**NOT_FOUND, **INVALID, **CONFLICT},
)
async def users_change(
    name: UserPath, body: UserChange, caller: CallerDep, context: ContextDep
) -> Any:
    return await actions.change_user(context, caller, name, role=body.role, disabled=body.disabled)


@router.delete(
    "/users/{name}",
    status_code=204,
    response_class=Response,
    summary="Remove a user (with their sessions and tokens)",
    responses={**NOT_FOUND, **CONFLICT},
)
async def users_remove(name: UserPath, caller: CallerDep, context: ContextDep) -> Response:
    await actions.remove_user(context, caller, name)
    return Response(status_code=204)


@router.post(
    "/users/{name}/password",
    response_model=PasswordSetOut,
    summary="Set a new password (or generate one); ends the user's other sessions",
    responses={**NOT_FOUND, **INVALID},
)
async def users_password(
    name: UserPath, body: PasswordSet, caller: CallerDep, context: ContextDep
) -> PasswordSetOut:
    generated = await actions.set_password(context, caller, name, password=body.password)
    return PasswordSetOut(generated_password=generated)


@router.post(
    "/users/{name}/reset-second-factor",
    status_code=204,
    response_class=Response,
    summary="Turn the user's two-step verification off (they can set it up again)",
    responses=NOT_FOUND,
)
async def users_reset_second_factor(
    name: UserPath, caller: CallerDep, context: ContextDep
) -> Response:
    await actions.reset_second_factor(context, caller, name)
    return Response(status_code=204)


@router.delete(
    "/users/{name}/sessions",
    response_model=RevokedCount,
    summary="End every session of a user",
    responses=NOT_FOUND,
)
async def users_revoke_sessions(
    name: UserPath, caller: CallerDep, context: ContextDep
) -> RevokedCount:
    return RevokedCount(ended=await actions.revoke_user_sessions(context, caller, name))
