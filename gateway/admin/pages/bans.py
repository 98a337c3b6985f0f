"""The bans page: the active bans, lifting one."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from gateway.admin.actions import bans as actions
from gateway.admin.caller import Caller
from gateway.admin.deps import web_context
from gateway.admin.pages.common import UNKNOWN_ACTION, Actions, Submission, dispatch, refused
from gateway.admin.rendering import NO_OUTCOME, Outcome, render_outcome
from gateway.admin.security import current_caller
from gateway.i18n import gettext as _
from gateway.services.errors import Invalid, ServiceError

router = APIRouter(include_in_schema=False)


async def _page(request: Request, caller: Caller, outcome: Outcome = NO_OUTCOME) -> HTMLResponse:
    found = await actions.list_bans(web_context(request))
    return render_outcome(request, caller, "bans.html", {"bans": found}, outcome)


async def lift(sub: Submission) -> Response:
    ban_id = sub.form.text("ban_id")
    if not ban_id.isdigit():
        raise Invalid(UNKNOWN_ACTION, field="ban_id")
    lifted = await actions.lift_ban(sub.context, sub.caller, int(ban_id))
    notice = _("Lifted the ban on {target}.").format(target=lifted.target)
    return await _page(sub.request, sub.caller, Outcome(notice=notice))


async def on_refusal(sub: Submission, error: ServiceError) -> Response:
    return await _page(sub.request, sub.caller, refused(error))


ACTIONS = Actions({"lift": lift}, on_refusal)


@router.get("/bans")
async def bans_get(request: Request) -> Response:
    return await _page(request, current_caller(request))


@router.post("/bans")
async def bans_post(request: Request) -> Response:
    return await dispatch(request, ACTIONS)
