"""The notifications page: where the gateway sends notifications and about what, how
delivery goes, "send a test message", and changing ``[notify]`` at run time.

Receivers, events and the CEMM-down delay can be changed here (stored in the database,
in force at once: :mod:`gateway.live_settings`) unless the configuration file or the
environment sets them - or, for receivers, ``[notify] urls_file`` - which win: the page
shows those locked, with where they are set (:mod:`gateway.settings.runtime`).

Receiver URLs carry secrets: the page shows them only masked, and never sends one back to
the browser. A receiver is added as a new URL (checked by Apprise before it is stored) and
removed by its position in the list.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from gateway.admin.actions import settings as settings_actions
from gateway.admin.caller import Caller
from gateway.admin.deps import live_settings, web_context
from gateway.admin.pages.common import Actions, Submission, dispatch, refused
from gateway.admin.rendering import NO_OUTCOME, Outcome, render_outcome
from gateway.admin.security import current_caller
from gateway.notify import runtime
from gateway.notify.events import EVENTS
from gateway.notify.message import mask
from gateway.services.errors import Invalid, ServiceError
from gateway.settings import Settings, SettingsError
from gateway.web.i18n import gettext

router = APIRouter(include_in_schema=False)
KEYS = ("urls", "events", "cemm_down_after")


def _settings(request: Request) -> Settings:
    live = live_settings(request)
    return live.current if live is not None else web_context(request).settings


async def _page(request: Request, caller: Caller, outcome: Outcome = NO_OUTCOME) -> HTMLResponse:
    context = web_context(request)
    settings = _settings(request)
    try:
        receivers = [mask(url) for url in runtime.receiver_urls(settings)]
        problem = None
    except SettingsError as error:
        receivers, problem = [], str(error)
    chosen = runtime.chosen_events(settings)
    live = live_settings(request)
    values = {
        "receivers": receivers,
        "urls_file": settings.notify.urls_file,
        "problem": problem,
        "events": [(name, gettext(event.title), name in chosen) for name, event in EVENTS.items()],
        "cemm_down_after": settings.notify.cemm_down_after,
        "delivery": context.status().notify,
        "locks": {
            key: settings_actions.setting_out(live, context.settings, f"notify.{key}").lock
            for key in KEYS
        },
    }
    return render_outcome(request, caller, "notify.html", values, outcome)


async def send_test(sub: Submission) -> Response:
    settings = _settings(sub.request)
    try:
        receivers = await asyncio.to_thread(runtime.send_test_now, settings, sub.caller.user_name)
    except (SettingsError, runtime.DeliveryError) as error:
        raise Invalid(str(error), field="test") from None
    notice = gettext("Sent a test message to {receivers}.").format(receivers=", ".join(receivers))
    return await _page(sub.request, sub.caller, Outcome(notice=notice))


async def _change(sub: Submission, changes: dict[str, Any], notice: str) -> Response:
    live = live_settings(sub.request)
    await settings_actions.change_settings(live, sub.context, sub.caller, changes)
    return await _page(sub.request, sub.caller, Outcome(notice=notice))


async def add_receiver(sub: Submission) -> Response:
    url = sub.form.text("url").strip()
    if not url or not await asyncio.to_thread(runtime.is_receiver_url, url):
        raise Invalid(
            gettext(
                "That is not an Apprise URL the gateway can send to; "
                "example: ntfy://ntfy.sh/a-long-random-topic"
            ),
            field="url",
        )
    urls = [*_settings(sub.request).notify.urls, url]
    notice = gettext("Added the receiver {receiver}.").format(receiver=mask(url))
    return await _change(sub, {"notify.urls": urls}, notice)


async def remove_receiver(sub: Submission) -> Response:
    urls = list(_settings(sub.request).notify.urls)
    index = sub.form.text("index")
    if not index.isdigit() or not 0 <= int(index) < len(urls):
        raise Invalid(gettext("There is no such receiver; reload the page."), field="index")
    removed = urls.pop(int(index))
    notice = gettext("Removed the receiver {receiver}.").format(receiver=mask(removed))
    return await _change(sub, {"notify.urls": urls}, notice)


def _submitted_changes(sub: Submission) -> dict[str, Any]:
    live = live_settings(sub.request)
    changes: dict[str, Any] = {}
    if live is None or not live.source("notify.events").locked:
        chosen = [name for name in EVENTS if sub.form.flag(f"event:{name}")]
        if not chosen:
            raise Invalid(
                gettext("Choose at least one event; to send nothing, remove the receivers."),
                field="events",
            )
        # Every event ticked is stored as "all": events added later are sent too.
        changes["notify.events"] = [] if len(chosen) == len(EVENTS) else chosen
    if live is None or not live.source("notify.cemm_down_after").locked:
        text = sub.form.text("cemm_down_after").strip()
        try:
            seconds = float(text)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds):
            raise Invalid(
                gettext("Give the seconds as a number, e.g. 120."), field="cemm_down_after"
            )
        changes["notify.cemm_down_after"] = seconds
    return changes


async def save(sub: Submission) -> Response:
    return await _change(sub, _submitted_changes(sub), gettext("Saved; in force now."))


async def on_refusal(sub: Submission, error: ServiceError) -> Response:
    return await _page(sub.request, sub.caller, refused(error))


ACTIONS = Actions(
    {"test": send_test, "add": add_receiver, "remove": remove_receiver, "save": save},
    on_refusal,
)


@router.get("/notify")
async def notify_get(request: Request) -> Response:
    return await _page(request, current_caller(request))


@router.post("/notify")
async def notify_post(request: Request) -> Response:
    return await dispatch(request, ACTIONS)
