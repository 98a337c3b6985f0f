"""The sessions page: every usable session, ending one or all of a user's. Ending one's
own logs the admin out, and the page says so."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from gateway.admin.actions import sessions as actions
from gateway.admin.actions import users as user_actions
from gateway.admin.caller import Caller
from gateway.admin.deps import web_context
from gateway.admin.pages.common import Actions, Submission, dispatch, refused
from gateway.admin.rendering import (
    NO_OUTCOME,
    Outcome,
    confirm_page,
    logged_out_page,
    render_outcome,
)
from gateway.admin.security import current_caller
from gateway.i18n import gettext as _
from gateway.i18n import ngettext
from gateway.services.errors import ServiceError

router = APIRouter(include_in_schema=False)
FIELDS = ("action", "session_id", "user")


async def _page(request: Request, caller: Caller, outcome: Outcome = NO_OUTCOME) -> HTMLResponse:
    found = await actions.list_sessions(web_context(request), caller)
    return render_outcome(request, caller, "sessions.html", {"sessions": found}, outcome)


def _ask(sub: Submission, title: str, message: str, button: str) -> Response:
    return confirm_page(
        sub.request,
        sub.caller,
        title=title,
        message=message,
        fields=sub.form.fields(*FIELDS),
        button=button,
        cancel_href="/sessions",
    )


async def revoke(sub: Submission) -> Response:
    session_id, user = sub.form.text("session_id"), sub.form.text("user")
    own = session_id == sub.caller.session_id
    if not sub.form.flag("confirmed"):
        message = _("{user} is logged out on that device; its WebSockets close.").format(
            user=user or _("The user")
        )
        if own:
            message += " " + _("This is your own session: you will be logged out.")
        return _ask(sub, _("End this session?"), message, _("End session"))
    ended = await actions.revoke_session(sub.context, sub.caller, session_id)
    notice = _("Ended the session of {user} ({address}).").format(
        user=ended.user, address=ended.client_address or _("unknown")
    )
    if own:
        return logged_out_page(sub.request, notice, "/sessions")
    return await _page(sub.request, sub.caller, Outcome(notice=notice))


async def revoke_user(sub: Submission) -> Response:
    user = sub.form.text("user")
    own = user.lower() == sub.caller.user_name.lower()
    if not sub.form.flag("confirmed"):
        message = _("Every session of {user} ends and their WebSockets close.").format(user=user)
        if own:
            message += " " + _("That includes this session: you will be logged out.")
        question = _("Log {user} out everywhere?").format(user=user)
        return _ask(sub, question, message, _("Log out everywhere"))
    count = await user_actions.revoke_user_sessions(sub.context, sub.caller, user)
    notice = ngettext(
        "Ended {count} session of {user}.", "Ended {count} sessions of {user}.", count
    ).format(count=count, user=user)
    if own or sub.form.text("session_id") == sub.caller.session_id:
        return logged_out_page(sub.request, notice, "/sessions")
    return await _page(sub.request, sub.caller, Outcome(notice=notice))


async def on_refusal(sub: Submission, error: ServiceError) -> Response:
    return await _page(sub.request, sub.caller, refused(error))


ACTIONS = Actions({"revoke": revoke, "revoke_user": revoke_user}, on_refusal)


@router.get("/sessions")
async def sessions_get(request: Request) -> Response:
    return await _page(request, current_caller(request))


@router.post("/sessions")
async def sessions_post(request: Request) -> Response:
    return await dispatch(request, ACTIONS)
