"""The WireGuard peers page: every peer, adding one, enabling/disabling, trusting,
rotating keys, removing, and showing a configuration (QR code, download, one-time link)
while the gateway still holds its generated key."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from gateway.admin.actions import peers as actions
from gateway.admin.actions import settings as settings_actions
from gateway.admin.actions import users as user_actions
from gateway.admin.caller import Caller
from gateway.admin.deps import live_settings, web_context, wireguard_manager
from gateway.admin.models import PeerAdd
from gateway.admin.pages.common import Actions, Handler, Submission, dispatch, refused
from gateway.admin.pages.forms import FormModel, service_words
from gateway.admin.rendering import (
    EXPIRY_LABELS,
    NO_OUTCOME,
    Outcome,
    confirm_page,
    render_outcome,
    sentence,
)
from gateway.admin.security import current_caller
from gateway.i18n import N_
from gateway.i18n import gettext as _
from gateway.qr import qr_svg
from gateway.services import peers, users
from gateway.services.errors import Invalid, ServiceError
from gateway.web.i18n import gettext
from gateway.wireguard import keys

router = APIRouter(include_in_schema=False)
PEER_EXPIRY_LABELS = {key: EXPIRY_LABELS[key] for key in actions.PEER_EXPIRY_CHOICES}
ADD_FIELDS = ("action", "name", "user", "expires", "trusted", "public_key")


def config_panel(
    name: str, config: str, link: Mapping[str, str | None] | None = None
) -> dict[str, Any]:
    """What the page shows of a configuration: QR code, download, text, one-time link."""
    return {
        "name": name,
        "config": config,
        "qr_svg": qr_svg(config),
        "download": "data:application/octet-stream;base64,"
        + base64.b64encode(config.encode()).decode(),
        "filename": f"{''.join(c if c.isalnum() else '-' for c in name)}.conf",
        "link": link,
    }


async def _page(
    request: Request,
    caller: Caller,
    outcome: Outcome = NO_OUTCOME,
    *,
    panel: Mapping[str, Any] | None = None,
) -> HTMLResponse:
    manager = wireguard_manager(request)
    context = web_context(request)
    found = await actions.list_peers(manager, context) if manager is not None else []
    response = render_outcome(
        request,
        caller,
        "peers.html",
        {
            "wireguard": manager,
            "wireguard_off": _(actions.WIREGUARD_OFF),
            "peers": found,
            "users": await user_actions.list_users(context) if manager is not None else [],
            "expiry_labels": PEER_EXPIRY_LABELS,
            "panel": panel,
            "vpn": {
                name: settings_actions.setting_out(
                    live_settings(request), context.settings, f"wireguard.{name}"
                )
                for name in ("enabled", "endpoint")
            },
        },
        outcome,
    )
    if panel is not None:
        response.headers["Cache-Control"] = "no-store"
    return response


CONFIRMATIONS = {
    "disable": (
        N_("Disable {name}?"),
        N_("{name} gets nothing through the tunnel until enabled."),
        N_("Disable"),
    ),
    "rotate": (
        N_("Make new keys for {name}?"),
        N_("The configuration on the device stops working at once; it needs the new one."),
        N_("Rotate keys"),
    ),
    "remove": (
        N_("Remove {name}?"),
        N_(
            "The peer and its keys are deleted; the device gets nothing through any more. "
            "This cannot be undone."
        ),
        N_("Remove"),
    ),
}


def confirmed_first(handler: Handler) -> Handler:
    """The handler, after the confirmation page when the action needs one."""

    async def handle(sub: Submission) -> Response:
        if sub.action in CONFIRMATIONS and not sub.form.flag("confirmed"):
            name = sub.form.text("name")
            title, message, button = (_(text) for text in CONFIRMATIONS[sub.action])
            return confirm_page(
                sub.request,
                sub.caller,
                title=title.format(name=name),
                message=message.format(name=name),
                fields=sub.form.fields("action", "name"),
                button=button,
                cancel_href="/peers",
            )
        return await handler(sub)

    return handle


def _expiry_from_the_list(text: str, kind: str) -> ServiceError:
    return Invalid(_("Choose an expiry from the list."), field="expires")


def _public_key(text: str) -> None:
    try:
        keys.check_key(text)
    except keys.WireguardKeyError as error:
        raise peers.PeerInvalid(error.text, field="public_key") from None


ADD = FormModel(
    PeerAdd,
    texts=("expires",),
    stripped=("name", "user", "public_key"),
    flags=("trusted",),
    optional=("user", "public_key"),
    defaults={"expires": "never"},
    # In the order the page, then the service, checked them.
    refusals={
        "expires": _expiry_from_the_list,
        "name": service_words(peers.check_name),
        "public_key": service_words(_public_key),
        "user": lambda text, kind: users.UserNotFound(users.NO_SUCH_USER, name=text),
    },
)


async def add(sub: Submission) -> Response:
    body = ADD.read(sub.form)
    if body.expires not in actions.PEER_EXPIRY_CHOICES:  # the page offers a list
        raise _expiry_from_the_list(body.expires, "")
    added = await actions.add_peer(
        sub.wireguard,
        sub.context,
        sub.caller,
        name=body.name,
        user=body.user,
        public_key=body.public_key,
        trusted=body.trusted,
        expires=body.expires,
    )
    peer = added.peer
    notice = _("Added {name} ({address}).").format(name=peer.name, address=peer.address_v4)
    if added.config is None:
        notice += " " + _(
            "Its device uses its own key: give it the server's public key and endpoint."
        )
    panel = config_panel(peer.name, added.config) if added.config else None
    return await _page(sub.request, sub.caller, Outcome(notice=notice), panel=panel)


CHANGES = {
    "enable": ({"enabled": True}, N_("{name} is enabled.")),
    "disable": ({"enabled": False}, N_("{name} is disabled.")),
    "trust": (
        {"trusted": True},
        N_("{name} is a trusted device (no login from its tunnel address)."),
    ),
    "untrust": ({"trusted": False}, N_("{name} is no longer a trusted device.")),
}


async def change(sub: Submission) -> Response:
    setting, words = CHANGES[sub.action]
    name = sub.form.text("name")
    changed = await actions.change_peer(sub.wireguard, sub.context, sub.caller, name, **setting)
    return await _page(sub.request, sub.caller, Outcome(notice=_(words).format(name=changed.name)))


async def rotate(sub: Submission) -> Response:
    name = sub.form.text("name")
    rotated = await actions.rotate_peer(sub.wireguard, sub.context, sub.caller, name)
    notice = _("New keys for {name}: the old configuration no longer works.").format(name=name)
    return await _page(
        sub.request, sub.caller, Outcome(notice=notice), panel=config_panel(name, rotated.config)
    )


async def remove(sub: Submission) -> Response:
    name = sub.form.text("name")
    await actions.remove_peer(sub.wireguard, sub.context, sub.caller, name)
    return await _page(
        sub.request, sub.caller, Outcome(notice=_("Removed {name}.").format(name=name))
    )


async def show(sub: Submission) -> Response:
    name = sub.form.text("name")
    config = await actions.peer_config(sub.wireguard, sub.context, name)
    return await _page(sub.request, sub.caller, panel=config_panel(name, config))


async def link(sub: Submission) -> Response:
    name = sub.form.text("name")
    config = await actions.peer_config(sub.wireguard, sub.context, name)
    made = await actions.create_peer_link(
        sub.wireguard, sub.context, sub.caller, name, host=sub.host()
    )
    shown = {"path": made.path, "url": made.url}
    return await _page(sub.request, sub.caller, panel=config_panel(name, config, shown))


async def vpn(sub: Submission) -> Response:
    """The WireGuard switch: on or off and the endpoint, in force at once."""
    live = live_settings(sub.request)
    changes: dict[str, object] = {}
    for name, value in (("enabled", sub.form.flag("enabled")), ("endpoint", None)):
        key = f"wireguard.{name}"
        if live is not None and live.source(key).locked:
            continue
        changes[key] = value if value is not None else sub.form.text("endpoint").strip()
    after = await settings_actions.change_settings(live, sub.context, sub.caller, changes)
    wireguard = after.wireguard
    notice = (
        gettext("WireGuard is on; phones dial {endpoint}.").format(endpoint=wireguard.endpoint)
        if wireguard.enabled
        else gettext("WireGuard is off.")
    )
    return await _page(sub.request, sub.caller, Outcome(notice=notice))


async def on_refusal(sub: Submission, error: ServiceError) -> Response:
    failed = refused(error, sub.form.fields(*ADD_FIELDS) if sub.action == "add" else None)
    return await _page(
        sub.request,
        sub.caller,
        Outcome(
            error=sentence(error.translated()), form=failed.form, status_code=failed.status_code
        ),
    )


ACTIONS = Actions(
    {
        action: confirmed_first(handler)
        for action, handler in {
            "add": add,
            **dict.fromkeys(CHANGES, change),
            "rotate": rotate,
            "remove": remove,
            "show": show,
            "link": link,
            "vpn": vpn,
        }.items()
    },
    on_refusal,
)


@router.get("/peers")
async def peers_get(request: Request) -> Response:
    return await _page(request, current_caller(request))


@router.post("/peers")
async def peers_post(request: Request) -> Response:
    return await dispatch(request, ACTIONS)
