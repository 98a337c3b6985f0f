"""``/api/tokens``: API tokens, creating one (answered once), revoking one."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from gateway.admin.actions import tokens as actions
from gateway.admin.api.common import (
    CONFLICT,
    INVALID,
    NOT_FOUND,
    CallerDep,
    ContextDep,
    IdText,
    UserQuery,
    resource_router,
)
from gateway.admin.models import TokenCreate, TokenCreated, TokenOut

router = resource_router()


@router.get("/tokens", response_model=list[TokenOut], summary="API tokens")
async def tokens_list(caller: CallerDep, context: ContextDep, user: UserQuery = None) -> Any:
    return await actions.list_tokens(context, user=user)


@router.post(
    "/tokens",
    response_model=TokenCreated,
    status_code=201,
    summary="Create an API token for a user (the token is answered once)",
    responses={**NOT_FOUND, **INVALID},
)
async def tokens_create(body: TokenCreate, caller: CallerDep, context: ContextDep) -> TokenCreated:
    token, record = await actions.create_token(
        context,
        caller,
        user=body.user,
        name=body.name,
        read_only=body.read_only,
        expires=body.expires,
    )
    return TokenCreated(token=token, record=record)


@router.delete(
    "/tokens/{token_id}",
    status_code=204,
    response_class=Response,
    summary="Revoke an API token",
    responses={**NOT_FOUND, **CONFLICT},
)
async def tokens_revoke(token_id: IdText, caller: CallerDep, context: ContextDep) -> Response:
    await actions.revoke_token(context, caller, token_id)
    return Response(status_code=204)
