"""Logging in with a password: the login form, its second-factor step, and the JSON login.

- ``GET /.gateway/login``: the form (already logged in: straight on to ``next``).
- ``POST /.gateway/login``: the password, with the form's double-submit token. An account
  with a second factor gets the second-factor page and a pending step (at most
  ``MAX_PENDING_CHALLENGES`` per account, the oldest ends first; each lives
  ``SECOND_FACTOR_TTL`` seconds and takes ``SECOND_FACTOR_ATTEMPTS`` codes).
- ``POST /.gateway/login/totp``: the code (TOTP or a recovery code) for a pending step.
- ``POST /.gateway/api/login``: ``{"username", "password", "totp"}`` as
  ``application/json`` only (a cross-site page cannot send that without a CORS preflight,
  which is never granted).

Every password and every code is one guess through the gate (:func:`guess`): refused
alike (429 with ``Retry-After``) while the account, the device or the address is banned,
without looking at the secret. A completed login always issues a new session token
(:func:`start_session`).
"""

from __future__ import annotations

import json
import secrets
import time

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from gateway.auth import tokens
from gateway.i18n import gettext as _
from gateway.policy.credentials import SessionInfo
from gateway.portal import enrolment, fresh_proof, passkey_ceremonies
from gateway.portal.guesses import GuessRefused, guess, remember_device
from gateway.portal.pages import (
    LOGIN_CSRF_COOKIE,
    login_csrf_ok,
    login_page,
    render,
    safe_next,
    set_login_csrf,
    web_context,
)
from gateway.services import login
from gateway.services.errors import Forbidden
from gateway.services.users import User
from gateway.web.context import PendingSecondFactor, client_address, user_agent

router = APIRouter(prefix="/.gateway")

SECOND_FACTOR_TTL = 300.0
SECOND_FACTOR_ATTEMPTS = 5
SECOND_FACTOR_CSRF_MAX_AGE = 600
MAX_PENDING_CHALLENGES = 5  # second-factor steps waiting per account; the oldest goes first


class LoginRefused(Exception):
    """A login step refused: 401 (wrong), 403 or 429 (the gate refused; ``retry_after``).

    ``code`` is what the JSON login answers as ``error``, the same in every language
    (scripts read it); the message, ``str()`` of the refusal, is what a page shows, in the
    reader's language."""

    def __init__(
        self, status: int, code: str, message: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message or code)
        self.status = status
        self.code = code
        self.retry_after = retry_after


def _gate_refused(refused: GuessRefused) -> LoginRefused:
    """The brute-force gate refused a guess without looking at it: 429, try again later."""
    return LoginRefused(
        429, "too_many_failed_attempts", str(refused), retry_after=refused.retry_after
    )


async def check_password(request: Request, username: str, password: str) -> User:
    """One password guess through the gate: the user, or ``LoginRefused`` (401 wrong,
    429 refused by the gate without looking at the password)."""
    try:
        user = await guess(
            request,
            account=username,
            verify=lambda conn: login.check_password(conn, username, password),
        )
    except GuessRefused as refused:
        raise _gate_refused(refused) from None
    if user is None:
        raise LoginRefused(401, "wrong_user_name_or_password", _("Wrong user name or password."))
    return user


async def check_second_factor(
    request: Request, user_name: str, user_id: int, code: str
) -> str | None:
    """One second-factor guess (TOTP or recovery code) through the gate: ``"totp"``,
    ``"recovery"``, None when wrong; ``LoginRefused`` (429) when the gate refuses."""
    try:
        return await guess(
            request,
            account=user_name,
            verify=lambda conn: login.check_second_factor(conn, user_id, code),
        )
    except GuessRefused as refused:
        raise _gate_refused(refused) from None


async def start_session(
    request: Request, user: User, *, method: str, response: Response
) -> SessionInfo:
    """A new session for ``user`` (every factor passed): its cookie, the device cookie,
    and - except for OIDC, which proves only when asked to - a fresh proof."""
    context = web_context(request)
    started = await context.db.run(
        login.start_session,
        user,
        lifetime=context.settings.auth.session_lifetime,
        client_address=client_address(request),
        user_agent=user_agent(request),
        method=method,
    )
    context.session_started(started.token, started.info)
    if method != "oidc":
        fresh_proof.record_proof(request, started.info.id)
    response.set_cookie(
        context.state.session_cookie,
        started.token,
        max_age=int(context.settings.auth.session_lifetime),
        path="/",
        httponly=True,
        samesite="lax",
        secure=context.secure_cookies(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/.gateway/")
    await remember_device(request, user.id, response)
    return started.info


def _challenge(request: Request, user: User, next_url: str) -> str:
    """A pending second-factor step; at most ``MAX_PENDING_CHALLENGES`` per account (a new
    one ends the oldest), so a password guesser cannot pile up steps to try codes in."""
    context = web_context(request)
    context.prune(time.time())
    waiting = sorted(
        (pending.expires_at, key)
        for key, pending in context.second_factor.items()
        if pending.user_id == user.id
    )
    for _created, key in waiting[: max(0, len(waiting) - MAX_PENDING_CHALLENGES + 1)]:
        del context.second_factor[key]
    challenge = secrets.token_urlsafe(24)
    context.second_factor[challenge] = PendingSecondFactor(
        user.id, user.name, next_url, time.time() + SECOND_FACTOR_TTL
    )
    return challenge


@router.get("/login")
async def login_form_page(request: Request, next: str = "/") -> Response:
    next_url = safe_next(next)
    if web_context(request).current_session(request) is not None:
        return RedirectResponse(next_url, status_code=303)
    return login_page(request, next_url=next_url)


@router.post("/login")
async def login_form(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    next: str = Form("/"),
    csrf_token: str = Form(""),
) -> Response:
    next_url = safe_next(next)
    if not login_csrf_ok(request, csrf_token):
        return login_page(
            request,
            next_url=next_url,
            error=_("The form expired; please try again."),
            username=username,
            status_code=403,
        )
    try:
        user = await check_password(request, username.strip(), password)
    except LoginRefused as refused:
        return login_page(
            request,
            next_url=next_url,
            username=username,
            status_code=refused.status,
            error=None if refused.retry_after else str(refused),
            retry_after=refused.retry_after,
        )
    if await passkey_ceremonies.needs_second_step(request, user):
        csrf = tokens.new_csrf_token()
        response = render(
            request,
            "login_totp.html",
            {
                "challenge": _challenge(request, user, next_url),
                "csrf_token": csrf,
                "next": next_url,
                "error": None,
                **await passkey_ceremonies.second_step_context(request, user.id),
            },
        )
        set_login_csrf(request, response, csrf, SECOND_FACTOR_CSRF_MAX_AGE)
        return response
    if enrolment.required(request, user):
        return enrolment.start(request, user, next_url)
    redirect = RedirectResponse(next_url, status_code=303)
    await start_session(request, user, method="password", response=redirect)
    return redirect


async def _second_factor_page(
    request: Request,
    user_id: int,
    challenge: str,
    csrf_token: str,
    next_url: str,
    *,
    error: str | None = None,
    retry_after: int | None = None,
) -> Response:
    """The same step again (its token, its count): after a wrong code, or the gate's 429."""
    page: dict[str, object] = {
        "challenge": challenge,
        "csrf_token": csrf_token,
        "next": next_url,
        "error": error,
        **await passkey_ceremonies.second_step_context(request, user_id),
    }
    if retry_after is None:
        return render(request, "login_totp.html", page, 401)
    page["retry_after"] = retry_after
    return render(request, "login_totp.html", page, 429, {"Retry-After": str(retry_after)})


@router.post("/login/totp")
async def login_second_factor(
    request: Request,
    challenge: str = Form(""),
    code: str = Form(""),
    next: str = Form("/"),
    csrf_token: str = Form(""),
) -> Response:
    context = web_context(request)
    next_url = safe_next(next)
    pending = context.second_factor.get(challenge)
    if (
        not login_csrf_ok(request, csrf_token)
        or pending is None
        or pending.expires_at <= time.time()
        or pending.attempts >= SECOND_FACTOR_ATTEMPTS
    ):
        context.second_factor.pop(challenge, None)
        return login_page(
            request,
            next_url=next_url,
            status_code=403,
            error=_("The verification step expired; please log in again."),
        )
    try:
        used = await check_second_factor(request, pending.user_name, pending.user_id, code)
    except LoginRefused as refused:
        return await _second_factor_page(
            request,
            pending.user_id,
            challenge,
            csrf_token,
            next_url,
            retry_after=refused.retry_after or 1,
        )
    pending.attempts += 1
    if used is None:
        return await _second_factor_page(
            request,
            pending.user_id,
            challenge,
            csrf_token,
            next_url,
            error=_("That code is not right."),
        )
    del context.second_factor[challenge]
    try:
        user = await context.db.run(login.user_for_second_step, pending.user_id)
    except Forbidden as refused:
        return login_page(request, next_url=next_url, status_code=403, error=refused.translated())
    redirect = RedirectResponse(pending.next_url, status_code=303)
    await start_session(request, user, method=f"password+{used}", response=redirect)
    return redirect


def _json_login_body(body: bytes) -> tuple[str, str, object]:
    """(username, password, totp) from the JSON body; ValueError, KeyError or TypeError."""
    fields = json.loads(body)
    return str(fields["username"]), str(fields["password"]), fields.get("totp")


@router.post("/api/login")
async def login_json(request: Request) -> Response:
    """``{"username", "password", "totp"}`` -> the session cookie (JSON content type only)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        return JSONResponse(
            {"error": "unsupported_media_type", "detail": "send Content-Type: application/json"},
            status_code=415,
        )
    try:
        username, password, code = _json_login_body(await request.body())
    except (ValueError, KeyError, TypeError):
        return JSONResponse(
            {"error": "bad_request", "detail": 'expected {"username": ..., "password": ...}'},
            status_code=400,
        )
    try:
        user = await check_password(request, username.strip(), password)
        if await passkey_ceremonies.needs_second_step(request, user):
            if not code:
                raise LoginRefused(401, "second_factor_required")
            used = await check_second_factor(request, user.name, user.id, str(code))
            if used is None:
                raise LoginRefused(401, "second_factor_wrong")
        elif enrolment.required(request, user):
            raise LoginRefused(403, "second_factor_setup_required")
    except LoginRefused as refused:
        headers = {"Retry-After": str(refused.retry_after)} if refused.retry_after else {}
        return JSONResponse(
            {"error": refused.code},
            status_code=refused.status,
            headers=headers,
        )
    response = JSONResponse({})
    info = await start_session(request, user, method="api", response=response)
    response.body = response.render(
        {
            "user": user.name,
            "role": user.role,
            "session": info.id,
            "csrf_token": info.csrf_token,
            "expires_at": info.expires_at,
        }
    )
    response.headers["content-length"] = str(len(response.body))
    return response
