"""The guest links page: every link, making one (its URL and QR code shown once),
revoking one (which closes the guest's sessions and WebSockets)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from gateway.admin.actions import guests as actions
from gateway.admin.caller import Caller
from gateway.admin.deps import web_context
from gateway.admin.models import GuestCreate
from gateway.admin.pages.common import Actions, Submission, dispatch, refused
from gateway.admin.pages.forms import FormModel, service_words
from gateway.admin.rendering import NO_OUTCOME, Outcome, confirm_page, render_outcome
from gateway.admin.security import current_caller
from gateway.i18n import gettext as _
from gateway.services import guests
from gateway.services.errors import Invalid, ServiceError

router = APIRouter(include_in_schema=False)
FIELDS = ("action", "name", "role", "expires", "browsers", "link_id")


async def _page(
    request: Request,
    caller: Caller,
    outcome: Outcome = NO_OUTCOME,
    made: actions.MadeLink | None = None,
) -> HTMLResponse:
    listed = {
        "links": await actions.list_links(web_context(request)),
        "now": time.time(),
        "made": made,
    }
    return render_outcome(request, caller, "guests.html", listed, outcome)


def _number(text: str, field: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise Invalid(_("Give a whole number."), field=field) from None


def _browsers(text: str, kind: str) -> ServiceError:
    if kind == "int_parsing":
        return Invalid(_("Give a whole number."), field="browsers")
    return service_words(lambda number: guests.check_browsers(int(number)))(text, kind)


def _deadline(text: str) -> None:
    guests.parse_deadline(text, now=time.time())


CREATE = FormModel(
    GuestCreate,
    texts=("role", "expires"),
    stripped=("name",),
    numbers=("browsers",),
    defaults={"role": "viewer", "expires": "8h", "browsers": "1"},
    # In the order the page, then the service, checked them.
    refusals={
        "expires": service_words(_deadline),
        "name": service_words(guests.check_name),
        "role": service_words(guests.check_role),
        "browsers": _browsers,
    },
)


async def create(sub: Submission) -> Response:
    body = CREATE.read(sub.form)
    made = await actions.create_link(
        sub.context,
        sub.caller,
        name=body.name,
        role=body.role,
        expires=body.expires,
        browsers=body.browsers,
        host=sub.host(),
    )
    notice = _("Made the guest link '{name}'. Send it now: it is shown only once.").format(
        name=made.link.name
    )
    return await _page(sub.request, sub.caller, Outcome(notice=notice), made)


async def revoke(sub: Submission) -> Response:
    link_id = _number(sub.form.text("link_id"), "link_id")
    if not sub.form.flag("confirmed"):
        return confirm_page(
            sub.request,
            sub.caller,
            title=_("Revoke this guest link?"),
            message=_(
                "The guest's open pages lose the CEMM at once, and the link opens nothing any more."
            ),
            fields=sub.form.fields(*FIELDS),
            button=_("Revoke"),
            cancel_href="/guests",
        )
    link = await actions.revoke_link(sub.context, sub.caller, link_id)
    return await _page(
        sub.request,
        sub.caller,
        Outcome(notice=_("Revoked the guest link '{name}'.").format(name=link.name)),
    )


async def on_refusal(sub: Submission, error: ServiceError) -> Response:
    return await _page(sub.request, sub.caller, refused(error, sub.form.fields(*FIELDS)))


ACTIONS = Actions({"create": create, "revoke": revoke}, on_refusal)


@router.get("/guests")
async def guests_get(request: Request) -> Response:
    return await _page(request, current_caller(request))


@router.post("/guests")
async def guests_post(request: Request) -> Response:
    return await dispatch(request, ACTIONS)
