"""The API tokens page: every token, creating one (shown once), revoking one."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from gateway.admin.actions import tokens as actions
from gateway.admin.actions import users as user_actions
from gateway.admin.caller import Caller
from gateway.admin.deps import web_context
from gateway.admin.pages.common import Actions, Submission, dispatch, refused
from gateway.admin.rendering import NO_OUTCOME, Outcome, confirm_page, render_outcome
from gateway.admin.security import current_caller
from gateway.i18n import gettext as _
from gateway.services.allowlist import EXPIRY_CHOICES
from gateway.services.errors import Invalid, ServiceError

router = APIRouter(include_in_schema=False)
FIELDS = ("action", "user", "name", "expires", "read_only", "token_id")


async def _page(request: Request, caller: Caller, outcome: Outcome = NO_OUTCOME) -> HTMLResponse:
    context = web_context(request)
    listed = {
        "tokens": await actions.list_tokens(context),
        "users": await user_actions.list_users(context),
    }
    return render_outcome(request, caller, "tokens.html", listed, outcome)


async def create(sub: Submission) -> Response:
    form = sub.form
    expires = form.text("expires", "never")
    if expires not in EXPIRY_CHOICES:
        raise Invalid(_("Choose an expiry from the list."), field="expires")
    token, record = await actions.create_token(
        sub.context,
        sub.caller,
        user=form.text("user"),
        name=form.text("name"),
        read_only=form.flag("read_only"),
        expires=expires,
    )
    outcome = Outcome(
        notice=_("Created the token '{name}' for {user}.").format(
            name=record.name, user=record.user_name
        ),
        shown_once={"title": _("API token '{name}'").format(name=record.name), "secret": token},
    )
    return await _page(sub.request, sub.caller, outcome)


async def revoke(sub: Submission) -> Response:
    token_id = sub.form.text("token_id")
    if not sub.form.flag("confirmed"):
        return confirm_page(
            sub.request,
            sub.caller,
            title=_("Revoke this API token?"),
            message=_(
                "Whatever uses the token {token} can no longer reach the CEMM "
                "through the gateway. This cannot be undone."
            ).format(token=token_id),
            fields=sub.form.fields(*FIELDS),
            button=_("Revoke"),
            cancel_href="/tokens",
        )
    await actions.revoke_token(sub.context, sub.caller, token_id)
    return await _page(
        sub.request,
        sub.caller,
        Outcome(notice=_("Revoked the token {token}.").format(token=token_id)),
    )


async def on_refusal(sub: Submission, error: ServiceError) -> Response:
    return await _page(sub.request, sub.caller, refused(error, sub.form.fields(*FIELDS)))


ACTIONS = Actions({"create": create, "revoke": revoke}, on_refusal)


@router.get("/tokens")
async def tokens_get(request: Request) -> Response:
    return await _page(request, current_caller(request))


@router.post("/tokens")
async def tokens_post(request: Request) -> Response:
    return await dispatch(request, ACTIONS)
