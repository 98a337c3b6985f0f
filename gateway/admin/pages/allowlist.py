"""The allowlist page: the entries, adding one (or the caller's own address), removing one.
A change that would cut off the caller's own address asks on a page of its own, and so does
adding a wide network (0.0.0.0/0, ::/0, a public network wider than /16), saying what it
means (:mod:`gateway.policy.wide_networks`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from gateway.admin.actions import allowlist as actions
from gateway.admin.caller import Caller
from gateway.admin.deps import web_context
from gateway.admin.models import AllowlistAdd
from gateway.admin.pages.common import Actions, Form, Submission, dispatch, refused
from gateway.admin.pages.forms import FormModel, service_words
from gateway.admin.rendering import NO_OUTCOME, Outcome, confirm_page, render_outcome
from gateway.admin.security import current_caller
from gateway.i18n import gettext as _
from gateway.services import allowlist
from gateway.services.allowlist import EXPIRY_CHOICES, SelfLockoutError, WideNetworkError
from gateway.services.errors import Invalid, ServiceError
from gateway.web.i18n import gettext

router = APIRouter(include_in_schema=False)
FIELDS = ("action", "network", "label", "expires", "entry_id", "confirm_lockout", "confirm_wide")


async def _page(request: Request, caller: Caller, outcome: Outcome = NO_OUTCOME) -> HTMLResponse:
    view = await actions.allowlist_view(web_context(request), caller)
    return render_outcome(request, caller, "allowlist.html", {"view": view}, outcome)


def _expiry_from_the_list(text: str, kind: str) -> ServiceError:
    return Invalid(_("Choose an expiry from the list."), field="expires")


def _network(text: str, kind: str) -> ServiceError:
    if not text:
        return Invalid(_("Enter a network or an address to add."), field="network")
    return service_words(allowlist.normalise)(text, kind)


ADD = FormModel(
    AllowlistAdd,
    texts=("expires",),
    stripped=("network", "label"),
    flags=("confirm_lockout", "confirm_wide"),
    defaults={"expires": "never"},
    # In the order the page, then the service, checked them.
    refusals={
        "expires": _expiry_from_the_list,
        "network": _network,
        "label": service_words(allowlist.check_label),
    },
)


async def _save(sub: Submission, form: Form) -> Response:
    body = ADD.read(form)
    if body.expires not in EXPIRY_CHOICES:  # the page offers a list; the API takes any
        raise _expiry_from_the_list(body.expires, "")
    entry, updated = await actions.save_allowlist_entry(
        sub.context,
        sub.caller,
        network=body.network,
        label=body.label,
        expires=body.expires,
        confirm_lockout=body.confirm_lockout,
        confirm_wide=body.confirm_wide,
    )
    if updated:
        notice = _("Updated the label and expiry of {network}.").format(network=entry.network)
    else:
        notice = _("Added {network}.").format(network=entry.network)
    return await _page(sub.request, sub.caller, Outcome(notice=notice))


async def add(sub: Submission) -> Response:
    return await _save(sub, sub.form)


async def add_mine(sub: Submission) -> Response:
    label = sub.form.text("label") or _("my address")
    return await _save(sub, sub.form.but(network=sub.caller.address, label=label))


async def remove(sub: Submission) -> Response:
    form = sub.form
    entry_id = int(form.text("entry_id")) if form.text("entry_id").isdigit() else 0
    if not form.flag("confirmed"):
        return confirm_page(
            sub.request,
            sub.caller,
            title=_("Remove this entry?"),
            message=_(
                "Addresses in {network} will no longer be admitted (unless another entry or "
                "a default network admits them), and their open connections close."
            ).format(network=form.text("network") or _("this network")),
            fields=form.fields(*FIELDS),
            button=_("Remove"),
            cancel_href="/allowlist",
        )
    network = await actions.remove_allowlist_entry(
        sub.context, sub.caller, entry_id, confirm_lockout=form.flag("confirm_lockout")
    )
    return await _page(
        sub.request, sub.caller, Outcome(notice=_("Removed {network}.").format(network=network))
    )


async def on_refusal(sub: Submission, error: ServiceError) -> Response:
    fields = sub.form.fields(*FIELDS)
    if isinstance(error, SelfLockoutError):
        return confirm_page(
            sub.request,
            sub.caller,
            title=_("This would lock you out"),
            message=error.translated(),
            warning=_(
                "Only go on if you will reach the CEMM in another way (another "
                "network, the VPN), or on purpose."
            ),
            fields={**fields, "confirm_lockout": "1"},
            button=_("Do it anyway"),
            cancel_href="/allowlist",
            status_code=409,
        )
    if isinstance(error, WideNetworkError):
        return confirm_page(
            sub.request,
            sub.caller,
            title=gettext("Allow {network}?").format(network=error.network),
            message=error.warning_text.translated(),
            warning=gettext(
                "Only go on if you mean it: usually the network of one place (a /24, or a "
                "single address) is what you want."
            ),
            fields={**fields, "confirm_wide": "1"},
            button=gettext("Allow it anyway"),
            cancel_href="/allowlist",
            status_code=409,
        )
    return await _page(sub.request, sub.caller, refused(error, fields))


ACTIONS = Actions({"add": add, "add_mine": add_mine, "remove": remove}, on_refusal)


@router.get("/allowlist")
async def allowlist_get(request: Request) -> Response:
    return await _page(request, current_caller(request))


@router.post("/allowlist")
async def allowlist_post(request: Request) -> Response:
    return await dispatch(request, ACTIONS)
