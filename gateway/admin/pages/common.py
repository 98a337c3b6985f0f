"""What every admin page shares: reading a submitted form (and refusing one without the
session's CSRF token), routing a form's ``action`` to its own function, and - in one
place, :func:`refused` - what a page says when the service layer refuses.

A page answers GET with the page and POST with the page again after doing what the
form's ``action`` field asks (so the address bar stays on the page). Each resource lists
its actions in one table (:class:`Actions`): one function per action.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response

from gateway.admin.caller import Caller
from gateway.admin.deps import web_context, wireguard_manager
from gateway.admin.refusals import status_of
from gateway.admin.rendering import Outcome, render
from gateway.admin.security import current_caller, form_csrf_ok
from gateway.i18n import gettext as _
from gateway.services.errors import Invalid, ServiceError
from gateway.web.context import WebContext
from gateway.wireguard.manager import WireguardManager


class Form:
    """A submitted form, read as text fields."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def text(self, name: str, default: str = "") -> str:
        value = self._data.get(name, default)
        return value if isinstance(value, str) else default

    def flag(self, name: str) -> bool:
        return self.text(name) in ("1", "on", "true", "yes")

    def but(self, **values: str) -> Form:
        """This form with some fields set as given (what a button means, not what it sent)."""
        return Form({**self._data, **values})

    def fields(self, *names: str) -> dict[str, str]:
        return {name: self.text(name) for name in names}


@dataclass(frozen=True)
class Submission:
    """One submitted form: who sent it, what it says, and the page's path parameter."""

    request: Request
    caller: Caller
    form: Form
    name: str = ""

    @property
    def context(self) -> WebContext:
        return web_context(self.request)

    @property
    def wireguard(self) -> WireguardManager | None:
        return wireguard_manager(self.request)

    @property
    def action(self) -> str:
        return self.form.text("action")

    def host(self) -> str | None:
        headers = self.request.headers
        return headers.get("x-forwarded-host") or headers.get("host")


Handler = Callable[[Submission], Awaitable[Response]]
Refused = Callable[[Submission, ServiceError], Awaitable[Response]]


@dataclass(frozen=True)
class Actions:
    """A resource's form actions, one function each, and the page it shows when the
    service layer refuses one (given the refusal as :func:`refused` words it)."""

    handlers: Mapping[str, Handler]
    on_refusal: Refused


UNKNOWN_ACTION = "Unknown action."  # a form no page of this app sends: not translated


def refused(error: ServiceError, form: Mapping[str, str] | None = None) -> Outcome:
    """What a page says when the service layer refuses: the message in the reader's
    language, the status of its kind (:func:`gateway.admin.refusals.status_of`), and the
    fields to fill in again."""
    return Outcome(error=error.translated(), form=form, status_code=status_of(error))


async def read_form(request: Request) -> tuple[Caller, Form, Response | None]:
    """The caller and form of a POST, or a refusal when the CSRF token is missing."""
    caller = current_caller(request)
    form = Form(await request.form())
    if not form_csrf_ok(caller, form.text("csrf_token")):
        refusal = render(
            request,
            caller,
            "admin_message.html",
            {
                "title": _("The form expired"),
                "message": _("Nothing was changed. Reload the page and try again."),
                "link_href": request.url.path,
            },
            403,
        )
        return caller, form, refusal
    return caller, form, None


async def dispatch(request: Request, actions: Actions, name: str = "") -> Response:
    """Run the action the form names (an unknown one is refused as invalid)."""
    caller, form, refusal = await read_form(request)
    if refusal is not None:
        return refusal
    submission = Submission(request, caller, form, name)
    handler = actions.handlers.get(submission.action)
    try:
        if handler is None:
            raise Invalid(UNKNOWN_ACTION, field="action")
        return await handler(submission)
    except ServiceError as error:
        return await actions.on_refusal(submission, error)
