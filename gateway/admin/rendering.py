"""How the admin pages are drawn: the templates and their filters, the frame every page
shares, what a page says after a form (:class:`Outcome`), and the pages that stand in for
one: not found, admins only, confirm first, logged out.

No inline script or style anywhere: the CSP allows only this app's own files.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse

from gateway.admin.caller import Caller
from gateway.i18n import N_
from gateway.i18n import gettext as _
from gateway.services.allowlist import EXPIRY_CHOICES
from gateway.web import i18n, sentences
from gateway.web.browsers import browser_name
from gateway.web.sentences import duration

HERE = Path(__file__).resolve().parent
PORTAL_TEMPLATES = HERE.parent / "portal" / "templates"
WEB_TEMPLATES = HERE.parent / "web" / "templates"  # frame.html, the shared page frame

# The admin's own templates first; the portal's frame and message page are shared.
templates = i18n.templates(HERE / "templates", PORTAL_TEMPLATES, WEB_TEMPLATES)


NAV = (
    ("/", N_("Dashboard")),
    ("/allowlist", N_("Allowlist")),
    ("/users", N_("Users")),
    ("/tokens", N_("API tokens")),
    ("/guests", N_("Guests")),
    ("/peers", N_("Peers")),
    ("/sessions", N_("Sessions")),
    ("/bans", N_("Bans")),
    ("/audit", N_("Audit log")),
    ("/notify", N_("Notifications")),
    ("/backup", N_("Backup")),
)
EXPIRY_LABELS = {
    "never": N_("Never"),
    "1h": N_("1 hour"),
    "1d": N_("1 day"),
    "7d": N_("7 days"),
    "30d": N_("30 days"),
}
assert set(EXPIRY_LABELS) == set(EXPIRY_CHOICES)


def relative(timestamp: float | None, now: float | None = None) -> str:
    """``5 minutes ago`` / ``in 3 hours``: a distance in time, for lists."""
    if timestamp is None:
        return _("never")
    delta = timestamp - (time.time() if now is None else now)
    if abs(delta) < 60:
        return _("just now") if delta <= 0 else _("in less than a minute")
    text = duration(abs(delta))
    if delta > 0:
        return _("in %(duration)s") % {"duration": text}
    return _("%(duration)s ago") % {"duration": text}


templates.env.filters["relative"] = relative
templates.env.filters["audit_sentence"] = sentences.audit_sentence
templates.env.filters["refusal_sentence"] = sentences.refusal_sentence
templates.env.filters["failed_logins_sentence"] = sentences.failed_logins_sentence
templates.env.filters["duration"] = sentences.duration
templates.env.filters["browser"] = browser_name
templates.env.globals["NAV"] = NAV
templates.env.globals["EXPIRY_LABELS"] = EXPIRY_LABELS


def sentence(text: str) -> str:
    """``no such peer`` -> ``No such peer.``: a service's message as a sentence."""
    return f"{text[:1].upper()}{text[1:]}{'' if text.endswith('.') else '.'}"


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


#: A page as it is before any form: nothing done, nothing wrong.
NO_OUTCOME = Outcome()


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


def forbidden_page(request: Request, status: int, detail: str) -> HTMLResponse:
    """The answer to someone logged in who may not use the admin app (portal look)."""
    return templates.TemplateResponse(
        request,
        "message.html",
        {
            "title": _("Admins only") if status == 403 else _("Refused"),
            "message": sentence(detail),
            "link_href": "/.gateway/account",
            "link_text": _("Your account"),
        },
        status_code=status,
    )


def not_found_page(request: Request) -> HTMLResponse:
    caller: Caller | None = getattr(request.state, "caller", None)
    return render(
        request,
        caller,
        "admin_message.html",
        {"title": _("Not found"), "message": _("There is no such page."), "link_href": "/"},
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


def logged_out_page(request: Request, notice: str, back: str) -> HTMLResponse:
    """After an admin ended their own session: say so, and offer to log in again."""
    return render(
        request,
        None,
        "admin_message.html",
        {
            "title": _("You are logged out"),
            "message": notice,
            "link_href": f"/.gateway/login?next={quote(back, safe='')}",
            "link_text": _("Log in again"),
        },
    )
