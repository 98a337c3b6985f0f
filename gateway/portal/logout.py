"""``POST /.gateway/logout``: end the session and clear its cookie.

Only with the session's CSRF token or from one of the gateway's own pages (the Origin
rule), so a cross-site form cannot log anyone out (nor clear the cookie). Answers with the
login page and the notice "You are logged out."; refused: 403 with a message page.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from gateway.auth import tokens
from gateway.i18n import gettext as _
from gateway.policy.access import same_origin
from gateway.portal.pages import login_page, message_page, web_context
from gateway.services import sessions
from gateway.web.context import WebContext, client_address

router = APIRouter(prefix="/.gateway")


def from_own_page(context: WebContext, request: Request) -> bool:
    """The browser says the request comes from one of the gateway's own pages: an
    ``Origin`` that passes the Origin rule (:func:`gateway.policy.access.same_origin`; the
    portal is served on the web and the admin port), or, without one, ``Sec-Fetch-Site:
    same-origin`` (a header pages cannot set). Saying nothing proves nothing here."""
    origin = request.headers.get("origin")
    fetch_site = request.headers.get("sec-fetch-site")
    if origin is None or origin.strip() == "null":
        return (fetch_site or "").strip().lower() == "same-origin"
    names = context.state.access.names
    listen = context.settings.listen
    return any(
        same_origin(origin, fetch_site, names=names, page_port=port)
        for port in (listen.http_port, listen.admin_port)
    )


@router.post("/logout")
async def logout(request: Request, csrf_token: str = Form("")) -> Response:
    """Log out: only with the session's CSRF token or from a same-origin page, so a
    cross-site form cannot log anyone out (nor clear the cookie)."""
    context = web_context(request)
    session = context.current_session(request)
    proven = session is not None and tokens.csrf_matches(session.csrf_token, csrf_token)
    if not proven and not from_own_page(context, request):
        return message_page(
            request,
            title=_("Not logged out"),
            message=_("The form expired; please try again."),
            link_href="/.gateway/account",
            link_text=_("Back"),
            status_code=403,
        )
    if session is not None:
        await context.db.run(
            sessions.revoke_session,
            session.id,
            actor=session.user_name,
            reason="logout",
            event="logout",
            client_address=client_address(request),
        )
        context.session_ended(session.id)
    response = login_page(request, next_url="/", notice=_("You are logged out."))
    response.delete_cookie(
        context.state.session_cookie, path="/", secure=context.secure_cookies(request)
    )
    return response
