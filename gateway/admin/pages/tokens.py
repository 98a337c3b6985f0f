"""The API tokens page: every token, creating one (shown once), revoking one."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from gateway.admin.actions import tokens as actions
from gateway.admin.actions import users as user_actions
from gateway.admin.caller import Caller
from gateway.admin.deps import web_context
from gateway.admin.models import TokenCreate
from gateway.admin.pages.common import Actions, Submission, dispatch, refused
from gateway.admin.pages.forms import FormModel
from gateway.admin.rendering import NO_OUTCOME, Outcome, confirm_page, render_outcome
from gateway.admin.security import current_caller
from gateway.i18n import gettext as _
from gateway.services.allowlist import EXPIRY_CHOICES
from gateway.services.api_tokens import NAME_LENGTH, NAME_NOT_PLAIN, TokenInvalid
from gateway.services.errors import Invalid, ServiceError
from gateway.services.users import NO_SUCH_USER, UserNotFound

router = APIRouter(include_in_schema=False)
FIELDS = ("action", "user", "name", "expires", "read_only", "token_id")


async def _page(request: Request, caller: Caller, outcome: Outcome = NO_OUTCOME) -> HTMLResponse:
    context = web_context(request)
    listed = {
        "tokens": await actions.list_tokens(context),
        "users": await user_actions.list_users(context),
    }
    return render_outcome(request, caller, "tokens.html", listed, outcome)


def _expiry_from_the_list(text: str, kind: str) -> ServiceError:
    return Invalid(_("Choose an expiry from the list."), field="expires")


def _token_name(text: str, kind: str) -> ServiceError:
    not_plain = kind in ("string_pattern_mismatch", "value_error")
    return TokenInvalid(NAME_NOT_PLAIN if not_plain else NAME_LENGTH, field="name")


CREATE = FormModel(
    TokenCreate,
    texts=("user", "expires"),
    stripped=("name",),
    flags=("read_only",),
    defaults={"expires": "never"},
    # In the order the page checked them before the service did.
    refusals={
        "expires": _expiry_from_the_list,
        "user": lambda text, kind: UserNotFound(NO_SUCH_USER, name=text),
        "name": _token_name,
    },
)


async def create(sub: Submission) -> Response:
    body = CREATE.read(sub.form)
    if body.expires not in EXPIRY_CHOICES:  # the page offers a list; the API takes any
        raise _expiry_from_the_list(body.expires, "")
    token, record = await actions.create_token(
        sub.context,
        sub.caller,
        user=body.user,
        name=body.name,
        read_only=body.read_only,
        expires=body.expires,
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
