"""``/.gateway/guest/<token>``: the page a guest link opens.

The link's token is the secret (256 bits, only its hash stored). ``GET`` asks the guest's
name (for the audit log); ``POST`` (the name, with the login form's double-submit token)
starts a guest session in this browser that ends at the link's deadline
(:func:`gateway.services.guests.open_session`) and goes to the CEMM's page. Every look-up
of a token - the page and the form alike, whatever the name given - is a guess through the
one gate (:mod:`gateway.portal.guesses`): an unknown, revoked or expired token is a failure
of the client's address, like a wrong password, and an address the gate refuses gets 429
before anything depends on the token. A link opened in as many browsers as it may is
refused (403) in any further one; a browser that already holds a session of the link goes
straight to the CEMM. The page is behind the proxy's allowlist like every other path of
the web port: an address it does not admit gets no answer at all.
"""

from __future__ import annotations

import sqlite3
import time

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from gateway.auth import tokens
from gateway.i18n import gettext as _
from gateway.portal.guesses import GuessRefused, guess, refusal_headers
from gateway.portal.pages import (
    LOGIN_CSRF_COOKIE,
    LOGIN_PAGE_CSRF_MAX_AGE,
    login_csrf_ok,
    message_page,
    render,
    set_login_csrf,
    web_context,
)
from gateway.services import guests
from gateway.web.context import client_address, user_agent
from gateway.web.times import when

router = APIRouter(prefix="/.gateway")


class _Full:
    """The link is right but has no browser left (a success of the guess all the same)."""


FULL = _Full()


class _BadName:
    """The link is right but the name given is not one (a success of the guess: the form
    is shown again, as the page's ``GET`` would show it)."""

    def __init__(self, link: guests.GuestLink, error: guests.GuestInvalid) -> None:
        self.link, self.error = link, error


def _not_valid(request: Request) -> Response:
    return message_page(
        request,
        title=_("Link not valid"),
        message=_("This guest link has expired, was revoked, or never existed. Ask for a new one."),
        link_href=None,
        status_code=404,
    )


def _too_many(refused: GuessRefused) -> Response:
    return Response(
        _("Too many attempts; try again later."),
        status_code=429,
        headers=refusal_headers(refused),
    )


def _already_here(request: Request, link_id: int) -> bool:
    """Whether this browser holds a usable session of this link already."""
    session = web_context(request).current_session(request)
    return session is not None and session.user_id == -link_id


def _form(request: Request, token: str, link: guests.GuestLink, error: str | None) -> Response:
    csrf = tokens.new_csrf_token()
    response = render(
        request,
        "guest.html",
        {
            "action": guests.LINK_PATH + token,
            "csrf_token": csrf,
            "link_name": link.name,
            "role": link.role,
            "until": when(link.expires_at),
            "error": error,
        },
        400 if error else 200,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
    set_login_csrf(request, response, csrf, LOGIN_PAGE_CSRF_MAX_AGE)
    return response


@router.get("/guest/{token}")
async def guest_page(request: Request, token: str) -> Response:
    def verify(conn: sqlite3.Connection) -> guests.GuestLink | None:
        return guests.find_active(conn, token, now=time.time())

    try:
        link = await guess(request, account="", verify=verify)
    except GuessRefused as refused:
        return _too_many(refused)
    if link is None:
        return _not_valid(request)
    if _already_here(request, link.id):
        return RedirectResponse("/", status_code=303)
    return _form(request, token, link, None)


@router.post("/guest/{token}")
async def guest_start(request: Request, token: str) -> Response:
    form = await request.form()
    name, csrf = str(form.get("guest_name", "")), str(form.get("csrf_token", ""))
    context = web_context(request)
    address, agent = client_address(request), user_agent(request)

    def verify(conn: sqlite3.Connection) -> guests.GuestSession | _Full | _BadName | None:
        # The name is checked inside the guess: whether the token is live shows only in
        # answers the gate has admitted.
        try:
            return guests.open_session(
                conn, token, guest_name=name, client_address=address, user_agent=agent
            )
        except guests.GuestLinkFull:
            return FULL
        except guests.GuestInvalid as error:
            link = guests.find_active(conn, token, now=time.time())
            return _BadName(link, error) if link is not None else None

    if not login_csrf_ok(request, csrf):
        return await guest_page(request, token)
    try:
        started: guests.GuestSession | _Full | _BadName | None = await guess(
            request, account="", verify=verify
        )
    except GuessRefused as refused:
        return _too_many(refused)
    if started is None:
        return _not_valid(request)
    if isinstance(started, _BadName):
        return _form(request, token, started.link, started.error.translated())
    if isinstance(started, _Full):
        return message_page(
            request,
            title=_("Link used up"),
            message=_(
                "This guest link has been opened in another browser already. "
                "Ask for a new link to use it here."
            ),
            link_href=None,
            status_code=403,
        )
    context.session_started(started.token, started.info)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        context.state.session_cookie,
        started.token,
        max_age=max(1, int(started.info.expires_at - time.time())),
        path="/",
        httponly=True,
        samesite="lax",
        secure=context.secure_cookies(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/.gateway/")
    return response
