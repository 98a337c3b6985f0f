"""Each user's account page under ``/.gateway/account``: their sessions, the password, the
second factor (an authenticator app) and its recovery codes.

Every change needs a session and its CSRF token (else: to the login page, or 403), and the
sensitive ones a fresh proof (:mod:`gateway.portal.fresh_proof`): the current password or
a code typed into the change itself, checked through the gate, or a proof from the last
five minutes. ``POST /.gateway/account/confirm`` gives that proof and returns to a page of
the account area. A refusal of a service (:class:`~gateway.services.errors.ServiceError`)
is shown on the account page with status 400.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.auth import tokens, totp
from gateway.i18n import gettext as _
from gateway.policy.credentials import SessionInfo
from gateway.portal import fresh_proof, passkey_ceremonies
from gateway.portal.guesses import GuessRefused, device_token
from gateway.portal.pages import ACCOUNT_PAGE, render, safe_next, web_context
from gateway.qr import qr_svg
from gateway.services import languages, sessions, users
from gateway.services.errors import ServiceError
from gateway.web.context import client_address
from gateway.web.language import language_choices
from gateway.web.times import when

router = APIRouter(prefix="/.gateway")


async def account_page(
    request: Request,
    session: SessionInfo,
    *,
    notice: str | None = None,
    error: str | None = None,
    totp_setup: dict[str, str] | None = None,
    recovery_codes: list[str] | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    context = web_context(request)
    user = await context.db.run(users.get_user_by_id, session.user_id)
    own = await context.db.run(
        sessions.list_sessions,
        now=time.time(),
        idle_timeout=context.settings.auth.session_idle_timeout,
        user_id=session.user_id,
    )
    activity = context.state.session_activity
    return render(
        request,
        "account.html",
        {
            "user": user,
            "csrf_token": session.csrf_token,
            "notice": notice,
            "error": error,
            "totp_setup": totp_setup,
            "recovery_codes": recovery_codes,
            "languages": language_choices(),
            "user_language": await context.db.run(languages.language_of, session.user_id),
            "sessions": [
                {
                    "id": s.id,
                    "created_at": when(s.created_at),
                    "last_seen_at": when(max(s.last_seen_at, activity.get(s.id, 0.0))),
                    "client_address": s.client_address or "-",
                    "user_agent": s.user_agent or "-",
                    "current": s.id == session.id,
                }
                for s in own
            ],
            **await passkey_ceremonies.page_context(request, session),
        },
        status_code,
        headers,
    )


def _login_redirect(path: str) -> RedirectResponse:
    return RedirectResponse(f"/.gateway/login?next={path}", status_code=303)


def _session_for_change(request: Request, csrf_token: str) -> SessionInfo | Response:
    session = web_context(request).current_session(request)
    if session is None:
        return _login_redirect(ACCOUNT_PAGE)
    if not tokens.csrf_matches(session.csrf_token, csrf_token):
        return Response(_("The form expired; reload the page."), status_code=403)
    if session.user_id < 0:  # a guest link's session: there is no account to change
        return Response(_("A guest has no account to change."), status_code=403)
    return session


@router.get("/account")
async def account(request: Request) -> Response:
    session = web_context(request).current_session(request)
    if session is None:
        return _login_redirect(ACCOUNT_PAGE)
    if session.user_id < 0:  # a guest link's session: there is no account to show
        return Response(_("A guest has no account; the link's deadline ends the visit."), 403)
    return await account_page(request, session)


def _account_path(value: str | None) -> str:
    """A page of the account area to return to after a confirmation; else the account page."""
    path = safe_next(value)
    return path if path == ACCOUNT_PAGE or path.startswith(ACCOUNT_PAGE + "/") else ACCOUNT_PAGE


async def _proof_for_change(
    request: Request, session: SessionInfo, *, password: str = "", code: str = ""
) -> Response | None:
    """None when the change may go ahead: a right ``password`` or ``code`` offered with it
    (checked through the gate), or a fresh proof within five minutes; else the answer."""
    if password or code:
        try:
            proven = await fresh_proof.prove(request, session, password=password, code=code)
        except GuessRefused as refused:
            return await account_page(
                request,
                session,
                error=_("Too many failed attempts. Try again in {seconds} seconds.").format(
                    seconds=refused.retry_after
                ),
                status_code=429,
                headers={"Retry-After": str(refused.retry_after)},
            )
        if not proven:
            wrong = (
                _("The current password is wrong.") if password else _("That code is not right.")
            )
            return await account_page(request, session, error=wrong, status_code=400)
        return None
    return await fresh_proof.require_fresh_proof(request, session, then=ACCOUNT_PAGE)


@router.post("/account/confirm")
async def account_confirm(
    request: Request,
    password: str = Form(""),
    code: str = Form(""),
    next: str = Form(ACCOUNT_PAGE),
    csrf_token: str = Form(""),
) -> Response:
    """Prove it is you (password or code) before a sensitive change; then back to ``next``."""
    session = _session_for_change(request, csrf_token)
    if isinstance(session, Response):
        return session
    then = _account_path(next)
    user = await web_context(request).db.run(users.get_user_by_id, session.user_id)
    try:
        proven = await fresh_proof.prove(request, session, password=password, code=code)
    except GuessRefused as refused:
        return fresh_proof.confirm_page(
            request, session, user, then=then, retry_after=refused.retry_after, status_code=429
        )
    if not proven:
        return fresh_proof.confirm_page(
            request, session, user, then=then, error=_("That is not right; try again.")
        )
    return RedirectResponse(then, status_code=303)


@router.post("/account/password")
async def change_password(
    request: Request,
    current_password: str = Form(""),
    new_password: str = Form(""),
    new_password_again: str = Form(""),
    csrf_token: str = Form(""),
) -> Response:
    session = _session_for_change(request, csrf_token)
    if isinstance(session, Response):
        return session
    context = web_context(request)
    if new_password != new_password_again:
        return await account_page(
            request, session, error=_("The new passwords differ."), status_code=400
        )
    refused = await _proof_for_change(request, session, password=current_password)
    if refused is not None:
        return refused
    try:
        await context.db.run(
            users.set_password,
            session.user_name,
            new_password,
            actor=session.user_name,
            keep_session=session.id,
            keep_device=device_token(request),
            client_address=client_address(request),
        )
    except ServiceError as error:
        return await account_page(request, session, error=error.translated(), status_code=400)
    context.auth_changed()
    return await account_page(
        request, session, notice=_("Password changed. Your other sessions were logged out.")
    )


@router.post("/account/totp/begin")
async def totp_begin(request: Request, csrf_token: str = Form("")) -> Response:
    """Set up an authenticator (needs a fresh proof: a session alone must not be able to
    put a second factor on the account that its owner does not have)."""
    session = _session_for_change(request, csrf_token)
    if isinstance(session, Response):
        return session
    refused = await _proof_for_change(request, session)
    if refused is not None:
        return refused
    secret = await web_context(request).db.run(users.begin_totp, session.user_id)
    return await account_page(request, session, totp_setup=_totp_setup(session, secret))


def _totp_setup(session: SessionInfo, secret: str) -> dict[str, str]:
    uri = totp.provisioning_uri(secret, account=session.user_name)
    return {"secret": secret, "uri": uri, "qr_svg": qr_svg(uri)}


@router.post("/account/totp/confirm")
async def totp_confirm(
    request: Request, code: str = Form(""), csrf_token: str = Form("")
) -> Response:
    session = _session_for_change(request, csrf_token)
    if isinstance(session, Response):
        return session
    context = web_context(request)
    try:
        codes = await context.db.run(
            users.confirm_totp,
            session.user_id,
            code,
            actor=session.user_name,
            client_address=client_address(request),
        )
    except ServiceError as error:
        secret = await context.db.run(users.pending_totp_secret, session.user_id)
        setup = _totp_setup(session, secret) if secret else None
        return await account_page(
            request, session, error=error.translated(), totp_setup=setup, status_code=400
        )
    return await account_page(
        request, session, notice=_("Two-step verification is on."), recovery_codes=codes
    )


@router.post("/account/totp/disable")
async def totp_disable(
    request: Request, code: str = Form(""), csrf_token: str = Form("")
) -> Response:
    """Turn the second factor off: a right code (through the gate) or a fresh proof."""
    session = _session_for_change(request, csrf_token)
    if isinstance(session, Response):
        return session
    refused = await _proof_for_change(request, session, code=code)
    if refused is not None:
        return refused
    await web_context(request).db.run(
        users.disable_totp,
        session.user_name,
        actor=session.user_name,
        client_address=client_address(request),
    )
    return await account_page(request, session, notice=_("Two-step verification is off."))


@router.post("/account/recovery-codes")
async def recovery_codes(request: Request, csrf_token: str = Form("")) -> Response:
    session = _session_for_change(request, csrf_token)
    if isinstance(session, Response):
        return session
    context = web_context(request)
    user = await context.db.run(users.get_user_by_id, session.user_id)
    if user is None or not user.totp_enabled:
        return await account_page(
            request, session, error=_("Turn on two-step verification first."), status_code=400
        )
    refused = await _proof_for_change(request, session)
    if refused is not None:
        return refused
    codes = await context.db.run(users.new_recovery_codes, session.user_id, actor=session.user_name)
    return await account_page(
        request, session, notice=_("New recovery codes."), recovery_codes=codes
    )
