"""Single sign-on (OIDC): ``GET /.gateway/oidc/start`` and ``GET /.gateway/oidc/callback``.

The start keeps the pending sign-in server-side, keyed by its ``state`` (at most
``OIDC_PENDING_PER_ADDRESS`` per client address and ``OIDC_PENDING_MAX`` in all, the
oldest dropped first, so starting sign-ons in a loop cannot fill the memory), and gives
the browser a cookie with that ``state``. The callback is accepted only in the browser
that started the sign-in (the cookie), once (the pending sign-in is taken out first).
Which local account the person logs in as is :mod:`gateway.services.oidc_accounts`;
every refusal after the start is recorded as ``login.failure`` in the audit log.
``reauthenticate=1`` asks the provider to check the credentials again (``prompt=login``):
such a sign-in is a fresh proof for a sensitive change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.auth.oidc import (
    PENDING_LOGIN_MAX_AGE,
    OidcError,
    PendingLogin,
    state_bound_to_browser,
)
from gateway.i18n import N_
from gateway.i18n import gettext as _
from gateway.portal import fresh_proof
from gateway.portal.login import start_session
from gateway.portal.pages import message_page, safe_next, web_context
from gateway.services import login, oidc_accounts
from gateway.services.errors import Forbidden
from gateway.web.context import WebContext, client_address, user_agent

router = APIRouter(prefix="/.gateway")

OIDC_STATE_COOKIE = "cemm_oidc_state"
OIDC_PENDING_PER_ADDRESS = 5  # single sign-ons in progress per client address
OIDC_PENDING_MAX = 100  # and in all; the oldest goes first


NOT_SET_UP = N_("Single sign-on is not set up on this gateway.")


@dataclass(frozen=True)
class PendingSignOn:
    """A single sign-on in progress: the client's pending login, and who started it."""

    login: PendingLogin
    client_address: str
    created_at: float


def _failed(request: Request, message: str, status_code: int) -> HTMLResponse:
    return message_page(
        request,
        title=_("Sign-in failed"),
        message=_(message),
        link_href="/.gateway/login",
        link_text=_("Back to the login page"),
        status_code=status_code,
    )


def _keep_pending_sign_on(context: WebContext, pending: PendingSignOn) -> None:
    """Keep a started sign-on; at most ``OIDC_PENDING_PER_ADDRESS`` per client address and
    ``OIDC_PENDING_MAX`` in all (the oldest are dropped), so starting sign-ons in a loop
    cannot fill the memory."""
    context.prune(time.time())
    waiting: dict[str, PendingSignOn] = context.oidc_pending
    same_address = sorted(
        (p.created_at, key)
        for key, p in waiting.items()
        if p.client_address == pending.client_address
    )
    for _created, key in same_address[: max(0, len(same_address) - OIDC_PENDING_PER_ADDRESS + 1)]:
        del waiting[key]
    everyone = sorted((p.created_at, key) for key, p in waiting.items())
    for _created, key in everyone[: max(0, len(everyone) - OIDC_PENDING_MAX + 1)]:
        del waiting[key]
    waiting[pending.login.state] = pending


@router.get("/oidc/start")
async def oidc_start(request: Request, next: str = "/", reauthenticate: str = "") -> Response:
    """Start a sign-on: the browser gets a cookie with the ``state``, which the callback
    must come back with. ``reauthenticate=1``: the provider asks for the credentials again
    (``prompt=login``), a fresh proof for a sensitive change."""
    context = web_context(request)
    if context.oidc is None:
        return _failed(request, NOT_SET_UP, 404)
    try:
        url, pending = await context.oidc.begin(
            safe_next(next), reauthenticate=reauthenticate == "1"
        )
    except OidcError as error:
        return _failed(request, error.translated(), 502)
    _keep_pending_sign_on(
        context, PendingSignOn(pending, client_address(request), pending.created_at)
    )
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        OIDC_STATE_COOKIE,
        pending.state,
        max_age=int(PENDING_LOGIN_MAX_AGE),
        path="/.gateway/oidc/",
        httponly=True,
        # Lax: the provider sends the browser back with a top-level cross-site GET.
        samesite="lax",
        secure=context.secure_cookies(request),
    )
    return response


async def _record_failure(request: Request, actor: str, reason: str, **detail: object) -> None:
    await web_context(request).db.run(
        login.record_failure,
        actor,
        reason=reason,
        client_address=client_address(request),
        user_agent=user_agent(request),
        **detail,
    )


@router.get("/oidc/callback")
async def oidc_callback(request: Request) -> Response:
    context = web_context(request)
    if context.oidc is None:
        return _failed(request, NOT_SET_UP, 404)
    query = dict(request.query_params)
    started: PendingSignOn | None = context.oidc_pending.pop(query.get("state", ""), None)
    if started is None:
        return _failed(request, N_("This sign-in has expired; please start again."), 400)
    pending = started.login
    if not state_bound_to_browser(pending, request.cookies.get(OIDC_STATE_COOKIE)):
        reason = "the sign-in was started in another browser (state cookie missing or wrong)"
        await _record_failure(request, "oidc", reason)
        return _failed(
            request,
            N_("This sign-in was started in another browser; please start again here."),
            400,
        )
    try:
        identity = await context.oidc.complete(pending, query)
    except OidcError as error:
        await _record_failure(request, "oidc", str(error), detail=error.detail)
        return _failed(request, error.translated(), 400)
    try:
        user = await context.db.run(
            oidc_accounts.sign_in,
            identity,
            context.oidc.config,
            client_address=client_address(request),
            user_agent=user_agent(request),
        )
    except Forbidden as refused:
        return _failed(request, refused.translated(), 403)
    response = RedirectResponse(safe_next(pending.next_url), status_code=303)
    info = await start_session(request, user, method="oidc", response=response)
    if pending.reauthenticate:
        fresh_proof.record_proof(request, info.id)
    response.delete_cookie(OIDC_STATE_COOKIE, path="/.gateway/oidc/")
    return response
