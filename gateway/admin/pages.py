"""The admin pages: server-rendered HTML forms over the same operations as the API.

Each page answers GET with the page and POST with the page again after doing what the
form's ``action`` field asks (so the address bar stays on the page). Every form carries
the session's CSRF token. A destructive action asks first: its form has a ``confirmed``
field that the page's script (``static/admin.js``) sets after a ``<dialog>``; without
script the server answers a confirmation page instead, which posts the same form again
confirmed. The self lock-out warning of the allowlist is always a page of its own.

No inline script or style anywhere: the CSP allows only this app's own files.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from gateway.admin import actions
from gateway.admin.api import wireguard_manager
from gateway.admin.dashboard import collect
from gateway.admin.security import ApiError, Caller, current_caller, form_csrf_ok
from gateway.qr import qr_svg
from gateway.services.allowlist import EXPIRY_CHOICES
from gateway.web.context import WebContext

HERE = Path(__file__).resolve().parent
PORTAL_TEMPLATES = HERE.parent / "portal" / "templates"
WEB_TEMPLATES = HERE.parent / "web" / "templates"  # frame.html, the shared page frame

# The admin's own templates first; the portal's frame and message page are shared.
templates = Jinja2Templates(directory=[HERE / "templates", PORTAL_TEMPLATES, WEB_TEMPLATES])

router = APIRouter(include_in_schema=False)

NAV = (
    ("/", "Dashboard"),
    ("/allowlist", "Allowlist"),
    ("/users", "Users"),
    ("/tokens", "API tokens"),
    ("/peers", "Peers"),
    ("/sessions", "Sessions"),
    ("/bans", "Bans"),
    ("/audit", "Audit log"),
)
EXPIRY_LABELS = {"never": "Never", "1h": "1 hour", "1d": "1 day", "7d": "7 days", "30d": "30 days"}
assert set(EXPIRY_LABELS) == set(EXPIRY_CHOICES)


# -- formatting ---------------------------------------------------------------------------
def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    try:
        return dt.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):
        return "far in the future" if timestamp > 0 else "long ago"


def relative(timestamp: float | None, now: float | None = None) -> str:
    """``5 min ago`` / ``in 3 h``: a short distance in time, for lists."""
    if timestamp is None:
        return "never"
    delta = timestamp - (time.time() if now is None else now)
    seconds = abs(delta)
    if seconds < 60:
        text = "less than a minute"
    elif seconds < 3600:
        text = f"{int(seconds // 60)} min"
    elif seconds < 86400 * 2:
        text = f"{int(seconds // 3600)} h"
    else:
        text = f"{int(seconds // 86400)} days"
    if text == "less than a minute":
        return "just now" if delta <= 0 else "in less than a minute"
    return f"in {text}" if delta > 0 else f"{text} ago"


templates.env.filters["when"] = when
templates.env.filters["relative"] = relative
templates.env.globals["NAV"] = NAV
templates.env.globals["EXPIRY_LABELS"] = EXPIRY_LABELS


def _ctx(request: Request) -> WebContext:
    context: WebContext = request.app.state.context
    return context


def render(
    request: Request,
    caller: Caller | None,
    name: str,
    values: Mapping[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    page = {
        "caller": caller,
        "user": {"name": caller.user_name, "role": caller.role} if caller else None,
        "csrf_token": caller.csrf_token if caller else None,
        "current_path": request.url.path,
        "now": time.time(),
        **values,
    }
    return templates.TemplateResponse(request, name, page, status_code=status_code)


@dataclass(frozen=True)
class Outcome:
    """What a page says after its form was handled: what was done or what went wrong, a
    secret shown once, the fields to fill in again, and the status code."""

    notice: str | None = None
    error: str | None = None
    shown_once: Mapping[str, str] | None = None
    form: Mapping[str, str] | None = None
    status_code: int = 200

    @classmethod
    def refused(cls, error: ApiError, form: Mapping[str, str] | None = None) -> Outcome:
        return cls(error=error.detail, form=form, status_code=error.status)


def render_outcome(
    request: Request,
    caller: Caller,
    name: str,
    values: Mapping[str, Any],
    outcome: Outcome,
) -> HTMLResponse:
    """A page with what its template lists (``values``) and the outcome of a form."""
    return render(
        request,
        caller,
        name,
        {
            **values,
            "notice": outcome.notice,
            "error": outcome.error,
            "shown_once": outcome.shown_once,
            "form": outcome.form or {},
        },
        outcome.status_code,
    )


def _sentence(text: str) -> str:
    """``no such peer`` -> ``No such peer.``: a service's message as a sentence."""
    return f"{text[:1].upper()}{text[1:]}{'' if text.endswith('.') else '.'}"


def forbidden_page(request: Request, status: int, detail: str) -> HTMLResponse:
    """The answer to someone logged in who may not use the admin app (portal look)."""
    return templates.TemplateResponse(
        request,
        "message.html",
        {
            "title": "Admins only" if status == 403 else "Refused",
            "message": _sentence(detail),
            "link_href": "/.gateway/account",
            "link_text": "Your account",
        },
        status_code=status,
    )


def not_found_page(request: Request) -> HTMLResponse:
    caller: Caller | None = getattr(request.state, "caller", None)
    return render(
        request,
        caller,
        "admin_message.html",
        {"title": "Not found", "message": "There is no such page.", "link_href": "/"},
        404,
    )


def confirm_page(
    request: Request,
    caller: Caller,
    *,
    title: str,
    message: str,
    fields: Mapping[str, str],
    button: str,
    cancel_href: str,
    warning: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Ask before doing it: the same form again, with ``confirmed`` set."""
    return render(
        request,
        caller,
        "confirm.html",
        {
            "title": title,
            "message": message,
            "warning": warning,
            "action_url": request.url.path,
            "fields": {**fields, "confirmed": "1"},
            "button": button,
            "cancel_href": cancel_href,
        },
        status_code,
    )


class Form:
    """A submitted form, read as text fields."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def text(self, name: str, default: str = "") -> str:
        value = self._data.get(name, default)
        return value if isinstance(value, str) else default

    def flag(self, name: str) -> bool:
        return self.text(name) in ("1", "on", "true", "yes")

    def fields(self, *names: str) -> dict[str, str]:
        return {name: self.text(name) for name in names}


async def _form(request: Request) -> tuple[Caller, Form, Response | None]:
    """The caller and form of a POST, or a refusal when the CSRF token is missing."""
    caller = current_caller(request)
    form = Form(await request.form())
    if not form_csrf_ok(caller, form.text("csrf_token")):
        refusal = render(
            request,
            caller,
            "admin_message.html",
            {
                "title": "The form expired",
                "message": "Nothing was changed. Reload the page and try again.",
                "link_href": request.url.path,
            },
            403,
        )
        return caller, form, refusal
    return caller, form, None


# -- dashboard ----------------------------------------------------------------------------
@router.get("/")
async def dashboard(request: Request) -> Response:
    caller = current_caller(request)
    data = await collect(_ctx(request), current_session=caller.session_id)
    return render(request, caller, "dashboard.html", {"dashboard": data})


# -- allowlist ----------------------------------------------------------------------------
async def _allowlist_page(
    request: Request, caller: Caller, outcome: Outcome = Outcome()
) -> HTMLResponse:
    view = await actions.allowlist_view(_ctx(request), caller)
    return render_outcome(request, caller, "allowlist.html", {"view": view}, outcome)


@router.get("/allowlist")
async def allowlist_get(request: Request) -> Response:
    return await _allowlist_page(request, current_caller(request))


@router.post("/allowlist")
async def allowlist_post(request: Request) -> Response:
    caller, form, refused = await _form(request)
    if refused:
        return refused
    context = _ctx(request)
    action = form.text("action")
    fields = form.fields("action", "network", "label", "expires", "entry_id", "confirm_lockout")
    try:
        if action in ("add", "add_mine"):
            network = caller.address if action == "add_mine" else form.text("network").strip()
            if not network:
                raise ApiError(400, "invalid", "Enter a network or an address to add.")
            expires = form.text("expires", "never")
            if expires not in EXPIRY_CHOICES:
                raise ApiError(400, "invalid", "Choose an expiry from the list.")
            label = form.text("label") or ("my address" if action == "add_mine" else "")
            entry, updated = await actions.save_allowlist_entry(
                context,
                caller,
                network=network,
                label=label,
                expires=expires,
                confirm_lockout=form.flag("confirm_lockout"),
            )
            done = "Updated the label and expiry of" if updated else "Added"
            return await _allowlist_page(
                request, caller, Outcome(notice=f"{done} {entry.network}.")
            )
        if action == "remove":
            entry_id = int(form.text("entry_id") or 0) if form.text("entry_id").isdigit() else 0
            if not form.flag("confirmed"):
                return confirm_page(
                    request,
                    caller,
                    title="Remove this entry?",
                    message=f"Addresses in {form.text('network') or 'this network'} will no longer "
                    "be admitted (unless another entry or a default network admits them), and "
                    "their open connections close.",
                    fields=fields,
                    button="Remove",
                    cancel_href="/allowlist",
                )
            network = await actions.remove_allowlist_entry(
                context, caller, entry_id, confirm_lockout=form.flag("confirm_lockout")
            )
            return await _allowlist_page(request, caller, Outcome(notice=f"Removed {network}."))
        raise ApiError(400, "invalid", "Unknown action.")
    except ApiError as error:
        if error.error == "self_lockout":
            return confirm_page(
                request,
                caller,
                title="This would lock you out",
                message=error.detail,
                warning="Only go on if you will reach the CEMM in another way (another "
                "network, the VPN), or on purpose.",
                fields={**fields, "confirm_lockout": "1"},
                button="Do it anyway",
                cancel_href="/allowlist",
                status_code=409,
            )
        return await _allowlist_page(request, caller, Outcome.refused(error, fields))


# -- users --------------------------------------------------------------------------------
async def _users_page(
    request: Request, caller: Caller, outcome: Outcome = Outcome()
) -> HTMLResponse:
    found = await actions.list_users(_ctx(request))
    return render_outcome(request, caller, "users.html", {"users": found}, outcome)


@router.get("/users")
async def users_get(request: Request) -> Response:
    return await _users_page(request, current_caller(request))


@router.post("/users")
async def users_post(request: Request) -> Response:
    caller, form, refused = await _form(request)
    if refused:
        return refused
    fields = form.fields("name", "role")
    try:
        if form.text("action") != "add":
            raise ApiError(400, "invalid", "Unknown action.")
        added = await actions.add_user(
            _ctx(request),
            caller,
            name=form.text("name").strip(),
            role=form.text("role", "user"),
            password=form.text("password") or None,
        )
    except ApiError as error:
        return await _users_page(request, caller, Outcome.refused(error, fields))
    shown = (
        {"title": f"Password for {added.user.name}", "secret": added.generated_password}
        if added.generated_password
        else None
    )
    return await _users_page(
        request,
        caller,
        Outcome(notice=f"Added {added.user.role} {added.user.name}.", shown_once=shown),
    )


async def _user_page(
    request: Request, caller: Caller, name: str, outcome: Outcome = Outcome()
) -> HTMLResponse:
    context = _ctx(request)
    try:
        user = await actions.get_user(context, name)
    except ApiError as missing:
        return render(
            request,
            caller,
            "admin_message.html",
            {"title": "No such user", "message": missing.detail, "link_href": "/users"},
            404,
        )
    return render_outcome(
        request,
        caller,
        "user.html",
        {
            "account": user,
            "sessions": await actions.list_sessions(context, caller, user=user.name),
            "tokens": await actions.list_tokens(context, user=user.name),
            "is_self": user.name.lower() == caller.user_name.lower(),
        },
        outcome,
    )


@router.get("/users/{name}")
async def user_get(request: Request, name: str) -> Response:
    return await _user_page(request, current_caller(request), name)


_USER_CONFIRMATIONS = {
    "disable": ("Disable {name}?", "{name} is logged out everywhere and cannot log in.", "Disable"),
    "role": ("Change {name}'s role?", "{name} will no longer be able to use these pages.", "Save"),
    "password": (
        "Set a new password for {name}?",
        "{name}'s sessions end (all but yours); they log in with the new password.",
        "Set password",
    ),
    "reset_2fa": (
        "Reset {name}'s two-step verification?",
        "{name} logs in with the password alone until they set it up again; their recovery "
        "codes stop working.",
        "Reset",
    ),
    "revoke_sessions": (
        "Log {name} out everywhere?",
        "Every session of {name} ends and their open WebSockets close.",
        "Log out everywhere",
    ),
    "remove": (
        "Remove {name}?",
        "The account, its sessions and its API tokens are deleted. This cannot be undone.",
        "Remove",
    ),
}


@router.post("/users/{name}")
async def user_post(request: Request, name: str) -> Response:
    caller, form, refused = await _form(request)
    if refused:
        return refused
    context = _ctx(request)
    action = form.text("action")
    role = form.text("role")
    needs_confirmation = action in _USER_CONFIRMATIONS and not (
        action == "role" and role == "admin"
    )
    if needs_confirmation and not form.flag("confirmed"):
        title, message, button = _USER_CONFIRMATIONS[action]
        if action == "revoke_sessions" and name.lower() == caller.user_name.lower():
            message += " That includes this session: you will be logged out."
        return confirm_page(
            request,
            caller,
            title=title.format(name=name),
            message=message.format(name=name),
            fields=form.fields("action", "role", "password", "generate"),
            button=button,
            cancel_href=f"/users/{name}",
        )
    notice, shown = None, None
    try:
        if action == "disable" or action == "enable":
            await actions.change_user(context, caller, name, disabled=action == "disable")
            notice = f"{name} is {'disabled' if action == 'disable' else 'enabled'}."
        elif action == "role":
            if role not in ("admin", "user"):
                raise ApiError(400, "invalid", "Choose the role admin or user.")
            await actions.change_user(context, caller, name, role=role)
            notice = f"{name} is now {'an admin' if role == 'admin' else 'a user'}."
        elif action == "password":
            password = None if form.flag("generate") else form.text("password")
            if password == "":
                raise ApiError(400, "invalid", "Enter a new password, or generate one.")
            generated = await actions.set_password(context, caller, name, password=password)
            notice = f"{name}'s password is set; their other sessions ended."
            if generated:
                shown = {"title": f"New password for {name}", "secret": generated}
        elif action == "reset_2fa":
            await actions.reset_second_factor(context, caller, name)
            notice = f"{name}'s two-step verification is off."
        elif action == "revoke_sessions":
            ended = await actions.revoke_user_sessions(context, caller, name)
            notice = f"Ended {ended} session{'s' if ended != 1 else ''} of {name}."
            if name.lower() == caller.user_name.lower():
                return _logged_out_page(request, notice, f"/users/{name}")
        elif action == "remove":
            await actions.remove_user(context, caller, name)
            return await _users_page(request, caller, Outcome(notice=f"Removed {name}."))
        else:
            raise ApiError(400, "invalid", "Unknown action.")
    except ApiError as error:
        if error.status == 404:
            return await _user_page(request, caller, name, Outcome(status_code=404))
        return await _user_page(request, caller, name, Outcome.refused(error))
    return await _user_page(request, caller, name, Outcome(notice=notice, shown_once=shown))


# -- API tokens ---------------------------------------------------------------------------
async def _tokens_page(
    request: Request, caller: Caller, outcome: Outcome = Outcome()
) -> HTMLResponse:
    context = _ctx(request)
    listed = {
        "tokens": await actions.list_tokens(context),
        "users": await actions.list_users(context),
    }
    return render_outcome(request, caller, "tokens.html", listed, outcome)


@router.get("/tokens")
async def tokens_get(request: Request) -> Response:
    return await _tokens_page(request, current_caller(request))


@router.post("/tokens")
async def tokens_post(request: Request) -> Response:
    caller, form, refused = await _form(request)
    if refused:
        return refused
    context = _ctx(request)
    action = form.text("action")
    fields = form.fields("action", "user", "name", "expires", "read_only", "token_id")
    try:
        if action == "create":
            expires = form.text("expires", "never")
            if expires not in EXPIRY_CHOICES:
                raise ApiError(400, "invalid", "Choose an expiry from the list.")
            token, record = await actions.create_token(
                context,
                caller,
                user=form.text("user"),
                name=form.text("name"),
                read_only=form.flag("read_only"),
                expires=expires,
            )
            return await _tokens_page(
                request,
                caller,
                Outcome(
                    notice=f"Created the token '{record.name}' for {record.user}.",
                    shown_once={"title": f"API token '{record.name}'", "secret": token},
                ),
            )
        if action == "revoke":
            token_id = form.text("token_id")
            if not form.flag("confirmed"):
                return confirm_page(
                    request,
                    caller,
                    title="Revoke this API token?",
                    message=f"Whatever uses the token {token_id} can no longer reach the CEMM "
                    "through the gateway. This cannot be undone.",
                    fields=fields,
                    button="Revoke",
                    cancel_href="/tokens",
                )
            await actions.revoke_token(context, caller, token_id)
            return await _tokens_page(
                request, caller, Outcome(notice=f"Revoked the token {token_id}.")
            )
        raise ApiError(400, "invalid", "Unknown action.")
    except ApiError as error:
        return await _tokens_page(request, caller, Outcome.refused(error, fields))


# -- WireGuard peers ----------------------------------------------------------------------
PEER_EXPIRY_LABELS = {key: EXPIRY_LABELS[key] for key in actions.PEER_EXPIRY_CHOICES}


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


async def _peers_page(
    request: Request,
    caller: Caller,
    outcome: Outcome = Outcome(),
    *,
    panel: Mapping[str, Any] | None = None,
) -> HTMLResponse:
    manager = wireguard_manager(request)
    context = _ctx(request)
    found = await actions.list_peers(manager, context) if manager is not None else []
    response = render_outcome(
        request,
        caller,
        "peers.html",
        {
            "wireguard": manager,
            "wireguard_off": actions.WIREGUARD_OFF,
            "peers": found,
            "users": await actions.list_users(context) if manager is not None else [],
            "expiry_labels": PEER_EXPIRY_LABELS,
            "panel": panel,
        },
        outcome,
    )
    if panel is not None:
        response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/peers")
async def peers_get(request: Request) -> Response:
    return await _peers_page(request, current_caller(request))


_PEER_CONFIRMATIONS = {
    "disable": (
        "Disable {name}?",
        "{name} gets nothing through the tunnel until enabled.",
        "Disable",
    ),
    "rotate": (
        "Make new keys for {name}?",
        "The configuration on the device stops working at once; it needs the new one.",
        "Rotate keys",
    ),
    "remove": (
        "Remove {name}?",
        "The peer and its keys are deleted; the device gets nothing through any more. This "
        "cannot be undone.",
        "Remove",
    ),
}


@router.post("/peers")
async def peers_post(request: Request) -> Response:
    caller, form, refused = await _form(request)
    if refused:
        return refused
    manager = wireguard_manager(request)
    context = _ctx(request)
    action, name = form.text("action"), form.text("name")
    fields = form.fields("action", "name", "user", "expires", "trusted", "public_key")
    if action in _PEER_CONFIRMATIONS and not form.flag("confirmed"):
        title, message, button = _PEER_CONFIRMATIONS[action]
        return confirm_page(
            request,
            caller,
            title=title.format(name=name),
            message=message.format(name=name),
            fields=form.fields("action", "name"),
            button=button,
            cancel_href="/peers",
        )
    try:
        if action == "add":
            expires = form.text("expires", "never")
            if expires not in actions.PEER_EXPIRY_CHOICES:
                raise ApiError(400, "invalid", "Choose an expiry from the list.")
            added = await actions.add_peer(
                manager,
                context,
                caller,
                name=name.strip(),
                user=form.text("user").strip() or None,
                public_key=form.text("public_key").strip() or None,
                trusted=form.flag("trusted"),
                expires=expires,
            )
            peer = added.peer
            notice = f"Added {peer.name} ({peer.address_v4})."
            if added.config is None:
                notice += (
                    " Its device uses its own key: give it the server's public key and endpoint."
                )
            panel = config_panel(peer.name, added.config) if added.config else None
            return await _peers_page(request, caller, Outcome(notice=notice), panel=panel)
        if action in ("enable", "disable", "trust", "untrust"):
            changed = await actions.change_peer(
                manager,
                context,
                caller,
                name,
                enabled={"enable": True, "disable": False}.get(action),
                trusted={"trust": True, "untrust": False}.get(action),
            )
            words = {
                "enable": "enabled",
                "disable": "disabled",
                "trust": "a trusted device (no login from its tunnel address)",
                "untrust": "no longer a trusted device",
            }
            return await _peers_page(
                request, caller, Outcome(notice=f"{changed.name} is {words[action]}.")
            )
        if action == "rotate":
            rotated = await actions.rotate_peer(manager, context, caller, name)
            return await _peers_page(
                request,
                caller,
                Outcome(notice=f"New keys for {name}: the old configuration no longer works."),
                panel=config_panel(name, rotated.config),
            )
        if action == "remove":
            await actions.remove_peer(manager, context, caller, name)
            return await _peers_page(request, caller, Outcome(notice=f"Removed {name}."))
        if action in ("show", "link"):
            config = await actions.peer_config(manager, context, name)
            link = None
            if action == "link":
                host = request.headers.get("x-forwarded-host") or request.headers.get("host")
                made = await actions.create_peer_link(manager, context, caller, name, host=host)
                link = {"path": made.path, "url": made.url}
            return await _peers_page(request, caller, panel=config_panel(name, config, link))
        raise ApiError(400, "invalid", "Unknown action.")
    except ApiError as error:
        failed = Outcome.refused(error, fields if action == "add" else None)
        return await _peers_page(request, caller, replace(failed, error=_sentence(error.detail)))


# -- sessions -----------------------------------------------------------------------------
async def _sessions_page(
    request: Request, caller: Caller, outcome: Outcome = Outcome()
) -> HTMLResponse:
    found = await actions.list_sessions(_ctx(request), caller)
    return render_outcome(request, caller, "sessions.html", {"sessions": found}, outcome)


@router.get("/sessions")
async def sessions_get(request: Request) -> Response:
    return await _sessions_page(request, current_caller(request))


@router.post("/sessions")
async def sessions_post(request: Request) -> Response:
    caller, form, refused = await _form(request)
    if refused:
        return refused
    context = _ctx(request)
    action = form.text("action")
    session_id, user = form.text("session_id"), form.text("user")
    own = session_id == caller.session_id
    if action in ("revoke", "revoke_user") and not form.flag("confirmed"):
        if action == "revoke":
            title = "End this session?"
            message = f"{user or 'The user'} is logged out on that device; its WebSockets close."
            if own:
                message += " This is your own session: you will be logged out."
        else:
            title = f"Log {user} out everywhere?"
            message = f"Every session of {user} ends and their WebSockets close."
            if user.lower() == caller.user_name.lower():
                message += " That includes this session: you will be logged out."
        return confirm_page(
            request,
            caller,
            title=title,
            message=message,
            fields=form.fields("action", "session_id", "user"),
            button="End session" if action == "revoke" else "Log out everywhere",
            cancel_href="/sessions",
        )
    try:
        if action == "revoke":
            ended = await actions.revoke_session(context, caller, session_id)
            notice = f"Ended the session of {ended.user} ({ended.client_address or 'unknown'})."
        elif action == "revoke_user":
            count = await actions.revoke_user_sessions(context, caller, user)
            notice = f"Ended {count} session{'s' if count != 1 else ''} of {user}."
        else:
            raise ApiError(400, "invalid", "Unknown action.")
    except ApiError as error:
        return await _sessions_page(request, caller, Outcome.refused(error))
    if own or (action == "revoke_user" and user.lower() == caller.user_name.lower()):
        return _logged_out_page(request, notice, "/sessions")
    return await _sessions_page(request, caller, Outcome(notice=notice))


def _logged_out_page(request: Request, notice: str, back: str) -> HTMLResponse:
    return render(
        request,
        None,
        "admin_message.html",
        {
            "title": "You are logged out",
            "message": notice,
            "link_href": f"/.gateway/login?next={quote(back, safe='')}",
            "link_text": "Log in again",
        },
    )


# -- bans ---------------------------------------------------------------------------------
async def _bans_page(
    request: Request, caller: Caller, outcome: Outcome = Outcome()
) -> HTMLResponse:
    found = await actions.list_bans(_ctx(request))
    return render_outcome(request, caller, "bans.html", {"bans": found}, outcome)


@router.get("/bans")
async def bans_get(request: Request) -> Response:
    return await _bans_page(request, current_caller(request))


@router.post("/bans")
async def bans_post(request: Request) -> Response:
    caller, form, refused = await _form(request)
    if refused:
        return refused
    try:
        if form.text("action") != "lift" or not form.text("ban_id").isdigit():
            raise ApiError(400, "invalid", "Unknown action.")
        lifted = await actions.lift_ban(_ctx(request), caller, int(form.text("ban_id")))
    except ApiError as error:
        return await _bans_page(request, caller, Outcome.refused(error))
    return await _bans_page(request, caller, Outcome(notice=f"Lifted the ban on {lifted.target}."))


# -- audit log ----------------------------------------------------------------------------
@router.get("/audit")
async def audit_get(request: Request) -> Response:
    caller = current_caller(request)
    context = _ctx(request)
    params = request.query_params
    chosen = {name: params.get(name, "").strip() for name in ("user", "event", "since", "until")}
    events = await actions.audit_events(context)
    error = None
    found: list[Any] = []
    more = False
    try:
        if chosen["event"] and chosen["event"] not in events:
            chosen["event"] = ""
        query = actions.AuditFilter(
            user=chosen["user"][:100] or None,
            event=chosen["event"] or None,
            since=actions.parse_moment(chosen["since"], "from"),
            until=actions.parse_moment(chosen["until"], "to"),
            limit=200,
        )
        found, more = await actions.search_audit(context, query)
    except ApiError as refusal:
        error = refusal.detail
    export = {key: value for key, value in chosen.items() if value}
    return render(
        request,
        caller,
        "audit.html",
        {
            "entries": found,
            "more": more,
            "events": events,
            "chosen": chosen,
            "export_query": export,
            "filtered": bool(export),
            "error": error,
        },
        400 if error else 200,
    )
