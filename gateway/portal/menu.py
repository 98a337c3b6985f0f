"""``GET /.gateway/menu``: what the gateway menu on a CEMM page shows when it opens.

The menu itself is a script the proxy adds to the CEMM's pages (``addons/page_scripts.py``,
``gateway/portal/static/menu.js``); it asks this route, on the page's own origin, only when
a person opens it. The answer is JSON in the reader's language: who is signed in, the
links (the account page, and for admins the admin app on the admin port of the host the
page came from) and the log-out form's action (``POST /.gateway/logout`` admits a
same-origin form, so the menu needs no token). Never cached: it names a person.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gateway.portal.pages import ACCOUNT_PAGE, web_context
from gateway.services.guests import GUEST_PREFIX
from gateway.web.context import request_scheme
from gateway.web.i18n import gettext as _

router = APIRouter(prefix="/.gateway")


def admin_app_url(request: Request, admin_port: int) -> str:
    """The admin app on the host the page came from (the admin listener's port)."""
    host = request.headers.get("x-forwarded-host") or request.headers.get("host") or ""
    hostname = urlsplit(f"//{host}").hostname or "localhost"
    if ":" in hostname:
        hostname = f"[{hostname}]"
    return f"{request_scheme(request)}://{hostname}:{admin_port}/"


@router.get("/menu")
async def menu(request: Request) -> JSONResponse:
    """Who is signed in and where the menu's links go."""
    context = web_context(request)
    session = context.current_session(request)
    links: list[dict[str, str]] = []
    answer: dict[str, Any] = {"title": _("Gateway"), "close": _("Close")}
    if session is None:
        answer["who"] = _("Not signed in.")
        links.append({"label": _("Log in"), "href": "/.gateway/login"})
    elif session.user_id < 0:  # a guest link's visit: no account, no admin app
        guest = session.user_name.removeprefix(GUEST_PREFIX)
        answer["who"] = _("Guest: %(name)s") % {"name": guest}
    else:
        answer["who"] = _("Signed in as %(name)s") % {"name": session.user_name}
        links.append({"label": _("Account"), "href": ACCOUNT_PAGE})
        if session.role == "admin":
            links.append(
                {
                    "label": _("Admin app"),
                    "href": admin_app_url(request, context.settings.listen.admin_port),
                }
            )
    answer["links"] = links
    if session is not None:
        answer["logout"] = {"label": _("Log out"), "action": "/.gateway/logout"}
    return JSONResponse(answer, headers={"Cache-Control": "no-store"})
