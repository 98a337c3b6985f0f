"""The notifications page: where the gateway sends notifications and about what, how
delivery goes, and "send a test message".

The receivers, events and delay come from ``[notify]`` in the configuration file or the
environment; the page shows them (receivers masked: their URLs carry secrets) locked, with
where they come from. Changing them at run time needs the run-time settings store, which
does not exist yet.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from gateway.admin.caller import Caller
from gateway.admin.deps import web_context
from gateway.admin.pages.common import Actions, Submission, dispatch, refused
from gateway.admin.rendering import NO_OUTCOME, Outcome, render_outcome
from gateway.admin.security import current_caller
from gateway.notify import runtime
from gateway.notify.events import EVENTS
from gateway.notify.message import mask
from gateway.services.errors import Invalid, ServiceError
from gateway.settings import SettingsError
from gateway.web.i18n import gettext

router = APIRouter(include_in_schema=False)


async def _page(request: Request, caller: Caller, outcome: Outcome = NO_OUTCOME) -> HTMLResponse:
    context = web_context(request)
    settings = context.settings
    try:
        receivers = [mask(url) for url in runtime.receiver_urls(settings)]
        problem = None
    except SettingsError as error:
        receivers, problem = [], str(error)
    chosen = runtime.chosen_events(settings)
    values = {
        "receivers": receivers,
        "urls_file": settings.notify.urls_file,
        "problem": problem,
        "events": [(name, gettext(event.title), name in chosen) for name, event in EVENTS.items()],
        "cemm_down_after": settings.notify.cemm_down_after,
        "delivery": context.status().notify,
    }
    return render_outcome(request, caller, "notify.html", values, outcome)


async def send_test(sub: Submission) -> Response:
    settings = sub.context.settings
    try:
        receivers = await asyncio.to_thread(runtime.send_test_now, settings, sub.caller.user_name)
    except (SettingsError, runtime.DeliveryError) as error:
        raise Invalid(str(error), field="test") from None
    notice = gettext("Sent a test message to {receivers}.").format(receivers=", ".join(receivers))
    return await _page(sub.request, sub.caller, Outcome(notice=notice))


async def on_refusal(sub: Submission, error: ServiceError) -> Response:
    return await _page(sub.request, sub.caller, refused(error))


ACTIONS = Actions({"test": send_test}, on_refusal)


@router.get("/notify")
async def notify_get(request: Request) -> Response:
    return await _page(request, current_caller(request))


@router.post("/notify")
async def notify_post(request: Request) -> Response:
    return await dispatch(request, ACTIONS)
