"""``/api/guests``: guest links, making one (its URL answered once), revoking one."""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import Request, Response
from pydantic import BaseModel, Field

from gateway.admin.actions import guests as actions
from gateway.admin.answers import RecordAnswer, answer_of, shown
from gateway.admin.api.common import (
    CONFLICT,
    INVALID,
    NOT_FOUND,
    CallerDep,
    ContextDep,
    NumericId,
    resource_router,
)
from gateway.admin.models import GuestCreate
from gateway.services.guests import GuestLink

router = resource_router()


@answer_of(
    GuestLink,
    (
        "id",
        "name",
        "role",
        "browsers",
        "sessions",
        "created_by",
        "created_at",
        "expires_at",
        "revoked_at",
        "first_used_at",
        "first_used_from",
        "state",
    ),
    described={"sessions": "browsers the link has opened so far"},
)
class GuestOut(RecordAnswer):
    state: Literal["active", "expired", "revoked"]


class GuestCreated(BaseModel):
    url: str = Field(description="the whole link; answered only here")
    record: GuestOut


def guest_out(link: GuestLink) -> GuestOut:
    return shown(GuestOut, link, state=link.state(time.time()))


@router.get("/guests", response_model=list[GuestOut], summary="Guest links")
async def guests_list(caller: CallerDep, context: ContextDep) -> Any:
    return [guest_out(link) for link in await actions.list_links(context)]


@router.post(
    "/guests",
    response_model=GuestCreated,
    status_code=201,
    summary="Make a guest link (its URL is answered once)",
    responses={**INVALID},
)
async def guests_create(
    body: GuestCreate, request: Request, caller: CallerDep, context: ContextDep
) -> GuestCreated:
    made = await actions.create_link(
        context,
        caller,
        name=body.name,
        role=body.role,
        expires=body.expires,
        browsers=body.browsers,
        host=request.headers.get("x-forwarded-host") or request.headers.get("host"),
    )
    return GuestCreated(url=made.url, record=guest_out(made.link))


@router.delete(
    "/guests/{link_id}",
    status_code=204,
    response_class=Response,
    summary="Revoke a guest link and close its sessions",
    responses={**NOT_FOUND, **CONFLICT},
)
async def guests_revoke(link_id: NumericId, caller: CallerDep, context: ContextDep) -> Response:
    await actions.revoke_link(context, caller, link_id)
    return Response(status_code=204)
