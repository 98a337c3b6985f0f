"""The users page (the list, adding one) and one user's page: role, disable/enable,
password, second factor, sessions, removal. Each change but making someone admin asks
first."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from gateway.admin.actions import passkeys as passkey_actions
from gateway.admin.actions import sessions as session_actions
from gateway.admin.actions import tokens as token_actions
from gateway.admin.actions import users as actions
from gateway.admin.caller import Caller
from gateway.admin.deps import web_context
from gateway.admin.models import PasswordSet, UserAdd, UserChange
from gateway.admin.pages.common import Actions, Handler, Submission, dispatch, refused
from gateway.admin.pages.forms import FormModel, service_words
from gateway.admin.rendering import (
    NO_OUTCOME,
    Outcome,
    confirm_page,
    logged_out_page,
    render,
    render_outcome,
)
from gateway.admin.security import current_caller
from gateway.auth import passwords
from gateway.i18n import N_, ngettext
from gateway.i18n import gettext as _
from gateway.services import users
from gateway.services.errors import Invalid, NotFound, ServiceError

router = APIRouter(include_in_schema=False)


async def _users_page(
    request: Request, caller: Caller, outcome: Outcome = NO_OUTCOME
) -> HTMLResponse:
    found = await actions.list_users(web_context(request))
    return render_outcome(request, caller, "users.html", {"users": found}, outcome)


async def _user_page(
    request: Request, caller: Caller, name: str, outcome: Outcome = NO_OUTCOME
) -> HTMLResponse:
    context = web_context(request)
    try:
        user = await actions.get_user(context, name)
    except NotFound as missing:
        return render(
            request,
            caller,
            "admin_message.html",
            {"title": _("No such user"), "message": missing.translated(), "link_href": "/users"},
            404,
        )
    return render_outcome(
        request,
        caller,
        "user.html",
        {
            "account": user,
            "sessions": await session_actions.list_sessions(context, caller, user=user.name),
            "tokens": await token_actions.list_tokens(context, user=user.name),
            "passkeys": await passkey_actions.list_passkeys(context, user=user.name),
            "is_self": user.name.lower() == caller.user_name.lower(),
        },
        outcome,
    )


# -- the forms, read through the API's models -----------------------------------------------
def _password_policy(password: str) -> None:
    # The length rules the model states; the rest (the user's name in it...) the service checks.
    try:
        passwords.check_password_policy(password, username="")
    except passwords.PasswordPolicyError as error:
        raise users.UserInvalid(error.text, field="password") from None


def _role_from_the_list(text: str, kind: str) -> ServiceError:
    return Invalid(_("Choose the role admin, user or viewer."), field="role")


def _new_password(text: str, kind: str) -> ServiceError:
    if not text:
        return Invalid(_("Enter a new password, or generate one."), field="password")
    return service_words(_password_policy)(text, kind)


ADD = FormModel(
    UserAdd,
    texts=("role", "password"),
    stripped=("name",),
    optional=("password",),
    defaults={"role": "user"},
    refusals={
        "name": service_words(users.check_name),
        "role": service_words(users.check_role),
        "password": service_words(_password_policy),
    },
)
ROLE = FormModel(UserChange, texts=("role",), refusals={"role": _role_from_the_list})
PASSWORD = FormModel(PasswordSet, texts=("password",), refusals={"password": _new_password})


# -- the list -----------------------------------------------------------------------------
async def add(sub: Submission) -> Response:
    body = ADD.read(sub.form)
    added = await actions.add_user(
        sub.context, sub.caller, name=body.name, role=body.role, password=body.password
    )
    shown = (
        {
            "title": _("Password for {name}").format(name=added.user.name),
            "secret": added.generated_password,
        }
        if added.generated_password
        else None
    )
    notice = _("Added {role} {name}.").format(role=_(added.user.role), name=added.user.name)
    return await _users_page(sub.request, sub.caller, Outcome(notice=notice, shown_once=shown))


async def list_refused(sub: Submission, error: ServiceError) -> Response:
    return await _users_page(
        sub.request, sub.caller, refused(error, sub.form.fields("name", "role"))
    )


LIST_ACTIONS = Actions({"add": add}, list_refused)


# -- one user -----------------------------------------------------------------------------
CONFIRMATIONS = {
    "disable": (
        N_("Disable {name}?"),
        N_("{name} is logged out everywhere and cannot log in."),
        N_("Disable"),
    ),
    "role": (
        N_("Change {name}'s role?"),
        N_("{name} will no longer be able to use these pages."),
        N_("Save"),
    ),
    "password": (
        N_("Set a new password for {name}?"),
        N_("{name}'s sessions end (all but yours); they log in with the new password."),
        N_("Set password"),
    ),
    "reset_2fa": (
        N_("Reset {name}'s two-step verification?"),
        N_(
            "{name} logs in with the password alone until they set it up again; their "
            "recovery codes stop working and their passkeys are removed."
        ),
        N_("Reset"),
    ),
    "remove_passkey": (
        N_("Remove this passkey of {name}?"),
        N_("{name} can no longer log in with it; they can make a new one on their account page."),
        N_("Remove"),
    ),
    "revoke_sessions": (
        N_("Log {name} out everywhere?"),
        N_("Every session of {name} ends and their open WebSockets close."),
        N_("Log out everywhere"),
    ),
    "remove": (
        N_("Remove {name}?"),
        N_("The account, its sessions and its API tokens are deleted. This cannot be undone."),
        N_("Remove"),
    ),
}


def _is_self(sub: Submission) -> bool:
    return sub.name.lower() == sub.caller.user_name.lower()


def _ask_first(sub: Submission) -> Response | None:
    """The confirmation page, if the action needs one and was not confirmed yet."""
    action, form = sub.action, sub.form
    if action not in CONFIRMATIONS or form.flag("confirmed"):
        return None
    if action == "role" and form.text("role") == "admin":
        return None
    title, message, button = (_(text) for text in CONFIRMATIONS[action])
    message = message.format(name=sub.name)
    if action == "revoke_sessions" and _is_self(sub):
        message += " " + _("That includes this session: you will be logged out.")
    return confirm_page(
        sub.request,
        sub.caller,
        title=title.format(name=sub.name),
        message=message,
        fields=form.fields("action", "role", "password", "generate", "passkey"),
        button=button,
        cancel_href=f"/users/{sub.name}",
    )


def confirmed_first(handler: Handler) -> Handler:
    """The handler, after the confirmation page when the action needs one."""

    async def handle(sub: Submission) -> Response:
        return _ask_first(sub) or await handler(sub)

    return handle


async def _done(sub: Submission, notice: str, shown: dict[str, str] | None = None) -> Response:
    outcome = Outcome(notice=notice, shown_once=shown)
    return await _user_page(sub.request, sub.caller, sub.name, outcome)


async def enable(sub: Submission) -> Response:
    await actions.change_user(sub.context, sub.caller, sub.name, disabled=False)
    return await _done(sub, _("{name} is enabled.").format(name=sub.name))


async def disable(sub: Submission) -> Response:
    await actions.change_user(sub.context, sub.caller, sub.name, disabled=True)
    return await _done(sub, _("{name} is disabled.").format(name=sub.name))


async def role(sub: Submission) -> Response:
    chosen = ROLE.read(sub.form).role
    await actions.change_user(sub.context, sub.caller, sub.name, role=chosen)
    if chosen == "admin":
        return await _done(sub, _("{name} is now an admin.").format(name=sub.name))
    return await _done(sub, _("{name} is now a user.").format(name=sub.name))


async def password(sub: Submission) -> Response:
    typed = None if sub.form.flag("generate") else PASSWORD.read(sub.form).password
    generated = await actions.set_password(sub.context, sub.caller, sub.name, password=typed)
    title = _("New password for {name}").format(name=sub.name)
    shown = {"title": title, "secret": generated} if generated else None
    notice = _("{name}'s password is set; their other sessions ended.").format(name=sub.name)
    return await _done(sub, notice, shown)


async def reset_2fa(sub: Submission) -> Response:
    await actions.reset_second_factor(sub.context, sub.caller, sub.name)
    return await _done(sub, _("{name}'s two-step verification is off.").format(name=sub.name))


async def remove_passkey(sub: Submission) -> Response:
    try:
        passkey_id = int(sub.form.text("passkey"))
    except ValueError:
        raise Invalid(_("Choose a passkey to remove."), field="passkey") from None
    removed = await passkey_actions.remove_passkey(
        sub.context, sub.caller, passkey_id, owner=sub.name
    )
    return await _done(
        sub,
        _("Removed the passkey “{passkey}” of {name}.").format(passkey=removed.name, name=sub.name),
    )


async def revoke_sessions(sub: Submission) -> Response:
    ended = await actions.revoke_user_sessions(sub.context, sub.caller, sub.name)
    notice = ngettext(
        "Ended {count} session of {user}.", "Ended {count} sessions of {user}.", ended
    ).format(count=ended, user=sub.name)
    if _is_self(sub):
        return logged_out_page(sub.request, notice, f"/users/{sub.name}")
    return await _done(sub, notice)


async def remove(sub: Submission) -> Response:
    await actions.remove_user(sub.context, sub.caller, sub.name)
    return await _users_page(
        sub.request, sub.caller, Outcome(notice=_("Removed {name}.").format(name=sub.name))
    )


async def user_refused(sub: Submission, error: ServiceError) -> Response:
    if isinstance(error, NotFound):
        return await _user_page(sub.request, sub.caller, sub.name, Outcome(status_code=404))
    return await _user_page(sub.request, sub.caller, sub.name, refused(error))


USER_ACTIONS = Actions(
    {
        action: confirmed_first(handler)
        for action, handler in {
            "enable": enable,
            "disable": disable,
            "role": role,
            "password": password,
            "reset_2fa": reset_2fa,
            "remove_passkey": remove_passkey,
            "revoke_sessions": revoke_sessions,
            "remove": remove,
        }.items()
    },
    user_refused,
)


@router.get("/users")
async def users_get(request: Request) -> Response:
    return await _users_page(request, current_caller(request))


@router.post("/users")
async def users_post(request: Request) -> Response:
    return await dispatch(request, LIST_ACTIONS)


@router.get("/users/{name}")
async def user_get(request: Request, name: str) -> Response:
    return await _user_page(request, current_caller(request), name)


@router.post("/users/{name}")
async def user_post(request: Request, name: str) -> Response:
    return await dispatch(request, USER_ACTIONS, name)
