"""The login portal under ``/.gateway/``: log in (password, second factor, OIDC), log out,
and each user's account page.

Every state change is protected against cross-site requests: the login form by a
double-submit token (a cookie only this site can set, echoed in the form), the JSON login
by requiring ``Content-Type: application/json`` (a cross-site page cannot send that
without a CORS preflight, which is never granted), and everything done while logged in by
the session's own CSRF token; logging out needs that token or a same-origin request. A
login always issues a new session token (no fixation).

Every guess of a secret - password, second-factor or recovery code, the password or code
that confirms a change - passes the one gate (:mod:`gateway.portal.guesses`, deciding in
:mod:`gateway.services.bans`): reserved before it is checked, refused alike (429) while
the account, the device or the address is banned. At most ``MAX_PENDING_CHALLENGES``
second-factor steps wait per account, and at most ``OIDC_PENDING_PER_ADDRESS`` /
``OIDC_PENDING_MAX`` single sign-ons. Sensitive changes need a fresh proof
(:mod:`gateway.portal.fresh_proof`). An OIDC callback is accepted only in the browser that
started the sign-in (the ``state`` cookie set by ``/.gateway/oidc/start``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from gateway.auth import tokens, totp
from gateway.auth.oidc import (
    PENDING_LOGIN_MAX_AGE,
    OidcConfig,
    OidcError,
    OidcIdentity,
    PendingLogin,
    admission,
    state_bound_to_browser,
    trusted_email,
)
from gateway.policy.access import same_origin
from gateway.policy.credentials import SessionInfo
from gateway.portal import fresh_proof
from gateway.portal.guesses import GuessRefused, device_token, guess, remember_device
from gateway.qr import qr_svg
from gateway.services import audit, bans, sessions, users
from gateway.services.users import User, UserError
from gateway.store.db import transaction
from gateway.web.context import (
    PendingSecondFactor,
    WebContext,
    client_address,
    user_agent,
)

router = APIRouter(prefix="/.gateway")
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")

LOGIN_CSRF_COOKIE = "cemm_login_csrf"
SECOND_FACTOR_TTL = 300.0
SECOND_FACTOR_ATTEMPTS = 5
MAX_PENDING_CHALLENGES = 5  # second-factor steps waiting per account; the oldest goes first
OIDC_STATE_COOKIE = "cemm_oidc_state"
OIDC_PENDING_PER_ADDRESS = 5  # single sign-ons in progress per client address
OIDC_PENDING_MAX = 100  # and in all; the oldest goes first


def _ctx(request: Request) -> WebContext:
    context: WebContext = request.app.state.context
    return context


def _safe_next(value: str | None) -> str:
    return tokens.is_safe_next(value or "/")


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M")


def _render(
    request: Request,
    name: str,
    context: dict[str, Any],
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, context, status_code=status_code, headers=headers
    )


# -- logging in ---------------------------------------------------------------------------
def _login_page(
    request: Request,
    *,
    next_url: str,
    error: str | None = None,
    notice: str | None = None,
    username: str | None = None,
    retry_after: int | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = _ctx(request)
    csrf = tokens.new_csrf_token()
    response = _render(
        request,
        "login.html",
        {
            "next": next_url,
            "csrf_token": csrf,
            "error": error,
            "notice": notice,
            "username": username,
            "retry_after": retry_after,
            "oidc_enabled": context.oidc is not None,
            "oidc_label": context.settings.oidc.label,
        },
        status_code,
    )
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        csrf,
        max_age=3600,
        path="/.gateway/",
        httponly=True,
        samesite="strict",
        secure=context.secure_cookies(request),
    )
    return response


def _login_csrf_ok(request: Request, submitted: str) -> bool:
    return tokens.csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), submitted)


@router.get("/login")
async def login_page(request: Request, next: str = "/") -> Response:
    next_url = _safe_next(next)
    if _ctx(request).current_session(request) is not None:
        return RedirectResponse(next_url, status_code=303)
    return _login_page(request, next_url=next_url)


class LoginRefused(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


async def _check_password(request: Request, username: str, password: str) -> User:
    """One password guess through the gate: the user, or ``LoginRefused`` (401 wrong,
    429 refused by the gate without looking at the password)."""
    try:
        user = await guess(
            request,
            account=username,
            verify=lambda conn: users.authenticate(conn, username, password),
        )
    except GuessRefused as refused:
        raise LoginRefused(429, str(refused), retry_after=refused.retry_after) from None
    if user is None:
        raise LoginRefused(401, "Wrong user name or password.")
    return user


async def _check_second_factor(
    request: Request, user_name: str, user_id: int, code: str
) -> str | None:
    """One second-factor guess (TOTP or recovery code) through the gate: ``"totp"``,
    ``"recovery"``, None when wrong; ``LoginRefused`` (429) when the gate refuses."""
    try:
        return await guess(
            request,
            account=user_name,
            verify=lambda conn: users.verify_second_factor(conn, user_id, code),
        )
    except GuessRefused as refused:
        raise LoginRefused(429, str(refused), retry_after=refused.retry_after) from None


async def _start_session(
    request: Request, user: User, *, method: str, response: Response
) -> SessionInfo:
    context = _ctx(request)
    token, info = await context.db.run(
        sessions.create_session,
        user,
        lifetime=context.settings.auth.session_lifetime,
        client_address=client_address(request),
        user_agent=user_agent(request),
        method=method,
    )
    await context.db.run(bans.record_success, user.name)
    context.session_started(token, info)
    if method != "oidc":
        fresh_proof.record_proof(request, info.id)
    response.set_cookie(
        context.state.session_cookie,
        token,
        max_age=int(context.settings.auth.session_lifetime),
        path="/",
        httponly=True,
        samesite="lax",
        secure=context.secure_cookies(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/.gateway/")
    await remember_device(request, user.id, response)
    return info


def _challenge(request: Request, user: User, next_url: str) -> str:
    """A pending second-factor step; at most ``MAX_PENDING_CHALLENGES`` per account (a new
    one ends the oldest), so a password guesser cannot pile up steps to try codes in."""
    context = _ctx(request)
    context.prune(time.time())
    waiting = sorted(
        (pending.expires_at, key)
        for key, pending in context.second_factor.items()
        if pending.user_id == user.id
    )
    for _, key in waiting[: max(0, len(waiting) - MAX_PENDING_CHALLENGES + 1)]:
        del context.second_factor[key]
    challenge = secrets.token_urlsafe(24)
    context.second_factor[challenge] = PendingSecondFactor(
        user.id, user.name, next_url, time.time() + SECOND_FACTOR_TTL
    )
    return challenge


@router.post("/login")
async def login_form(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    next: str = Form("/"),
    csrf_token: str = Form(""),
) -> Response:
    next_url = _safe_next(next)
    if not _login_csrf_ok(request, csrf_token):
        return _login_page(
            request,
            next_url=next_url,
            error="The form expired; please try again.",
            username=username,
            status_code=403,
        )
    try:
        user = await _check_password(request, username.strip(), password)
    except LoginRefused as refused:
        return _login_page(
            request,
            next_url=next_url,
            username=username,
            status_code=refused.status,
            error=None if refused.retry_after else str(refused),
            retry_after=refused.retry_after,
        )
    if user.totp_enabled:
        csrf = tokens.new_csrf_token()
        response = _render(
            request,
            "login_totp.html",
            {
                "challenge": _challenge(request, user, next_url),
                "csrf_token": csrf,
                "next": next_url,
                "error": None,
            },
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            csrf,
            max_age=600,
            path="/.gateway/",
            httponly=True,
            samesite="strict",
            secure=_ctx(request).secure_cookies(request),
        )
        return response
    redirect = RedirectResponse(next_url, status_code=303)
    await _start_session(request, user, method="password", response=redirect)
    return redirect


@router.post("/login/totp")
async def login_second_factor(
    request: Request,
    challenge: str = Form(""),
    code: str = Form(""),
    next: str = Form("/"),
    csrf_token: str = Form(""),
) -> Response:
    context = _ctx(request)
    next_url = _safe_next(next)
    pending = context.second_factor.get(challenge)
    if (
        not _login_csrf_ok(request, csrf_token)
        or pending is None
        or pending.expires_at <= time.time()
        or pending.attempts >= SECOND_FACTOR_ATTEMPTS
    ):
        context.second_factor.pop(challenge, None)
        return _login_page(
            request,
            next_url=next_url,
            status_code=403,
            error="The verification step expired; please log in again.",
        )
    try:
        used = await _check_second_factor(request, pending.user_name, pending.user_id, code)
    except LoginRefused as refused:
        # The step stays as it was (its token, its count): the same refusal as every step.
        return _render(
            request,
            "login_totp.html",
            {
                "challenge": challenge,
                "csrf_token": csrf_token,
                "next": next_url,
                "error": None,
                "retry_after": refused.retry_after,
            },
            429,
            {"Retry-After": str(refused.retry_after)},
        )
    pending.attempts += 1
    if used is None:
        return _render(
            request,
            "login_totp.html",
            {
                "challenge": challenge,
                "csrf_token": csrf_token,
                "next": next_url,
                "error": "That code is not right.",
            },
            401,
        )
    del context.second_factor[challenge]
    user = await context.db.run(users.get_user_by_id, pending.user_id)
    if user is None or user.disabled:
        return _login_page(request, next_url=next_url, status_code=403, error="Account disabled.")
    redirect = RedirectResponse(pending.next_url, status_code=303)
    await _start_session(request, user, method=f"password+{used}", response=redirect)
    return redirect


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
        body = json.loads(await request.body())
        username, password = str(body["username"]), str(body["password"])
        code = body.get("totp")
    except (ValueError, KeyError, TypeError):
        return JSONResponse(
            {"error": "bad_request", "detail": 'expected {"username": ..., "password": ...}'},
            status_code=400,
        )
    try:
        user = await _check_password(request, username.strip(), password)
        if user.totp_enabled:
            if not code:
                raise LoginRefused(401, "second factor required")
            used = await _check_second_factor(request, user.name, user.id, str(code))
            if used is None:
                raise LoginRefused(401, "second factor wrong")
    except LoginRefused as refused:
        headers = {"Retry-After": str(refused.retry_after)} if refused.retry_after else {}
        return JSONResponse(
            {"error": str(refused).rstrip(".").lower().replace(" ", "_")},
            status_code=refused.status,
            headers=headers,
        )
    response = JSONResponse({})
    info = await _start_session(request, user, method="api", response=response)
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


# -- logging out -------------------------------------------------------------------------
def _same_origin(context: WebContext, request: Request) -> bool:
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
    context = _ctx(request)
    session = context.current_session(request)
    proven = session is not None and tokens.csrf_matches(session.csrf_token, csrf_token)
    if not proven and not _same_origin(context, request):
        return _render(
            request,
            "message.html",
            {
                "title": "Not logged out",
                "message": "The form expired; please try again.",
                "link_href": "/.gateway/account",
                "link_text": "Back",
            },
            403,
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
    response = _login_page(request, next_url="/", notice="You are logged out.")
    response.delete_cookie(
        context.state.session_cookie, path="/", secure=context.secure_cookies(request)
    )
    return response


# -- the account page ---------------------------------------------------------------------
async def _account_page(
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
    context = _ctx(request)
    user = await context.db.run(users.get_user_by_id, session.user_id)
    own = await context.db.run(
        sessions.list_sessions,
        now=time.time(),
        idle_timeout=context.settings.auth.session_idle_timeout,
        user_id=session.user_id,
    )
    return _render(
        request,
        "account.html",
        {
            "user": user,
            "csrf_token": session.csrf_token,
            "notice": notice,
            "error": error,
            "totp_setup": totp_setup,
            "recovery_codes": recovery_codes,
            "sessions": [
                {
                    "id": s.id,
                    "created_at": _when(s.created_at),
                    "last_seen_at": _when(
                        max(s.last_seen_at, context.state.session_activity.get(s.id, 0.0))
                    ),
                    "client_address": s.client_address or "-",
                    "user_agent": s.user_agent or "-",
                    "current": s.id == session.id,
                }
                for s in own
            ],
        },
        status_code,
        headers,
    )


def _login_redirect(path: str) -> RedirectResponse:
    return RedirectResponse(f"/.gateway/login?next={path}", status_code=303)


def _session_for_change(request: Request, csrf_token: str) -> SessionInfo | Response:
    session = _ctx(request).current_session(request)
    if session is None:
        return _login_redirect("/.gateway/account")
    if not tokens.csrf_matches(session.csrf_token, csrf_token):
        return Response("The form expired; reload the page.", status_code=403)
    return session


@router.get("/account")
async def account(request: Request) -> Response:
    session = _ctx(request).current_session(request)
    if session is None:
        return _login_redirect("/.gateway/account")
    return await _account_page(request, session)


ACCOUNT_PAGE = "/.gateway/account"


def _account_path(value: str | None) -> str:
    """A page of the account area to return to after a confirmation; else the account page."""
    path = _safe_next(value)
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
            return await _account_page(
                request,
                session,
                error=f"Too many failed attempts. Try again in {refused.retry_after} seconds.",
                status_code=429,
                headers={"Retry-After": str(refused.retry_after)},
            )
        if not proven:
            wrong = "The current password is wrong." if password else "That code is not right."
            return await _account_page(request, session, error=wrong, status_code=400)
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
    user = await _ctx(request).db.run(users.get_user_by_id, session.user_id)
    try:
        proven = await fresh_proof.prove(request, session, password=password, code=code)
    except GuessRefused as refused:
        return fresh_proof.confirm_page(
            request, session, user, then=then, retry_after=refused.retry_after, status_code=429
        )
    if not proven:
        return fresh_proof.confirm_page(
            request, session, user, then=then, error="That is not right; try again."
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
    context = _ctx(request)
    if new_password != new_password_again:
        return await _account_page(
            request, session, error="The new passwords differ.", status_code=400
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
    except UserError as error:
        return await _account_page(request, session, error=str(error), status_code=400)
    context.auth_changed()
    return await _account_page(
        request, session, notice="Password changed. Your other sessions were logged out."
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
    secret = await _ctx(request).db.run(users.begin_totp, session.user_id)
    return await _account_page(request, session, totp_setup=_totp_setup(session, secret))


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
    context = _ctx(request)
    try:
        codes = await context.db.run(
            users.confirm_totp,
            session.user_id,
            code,
            actor=session.user_name,
            client_address=client_address(request),
        )
    except UserError as error:
        secret = await context.db.run(users.pending_totp_secret, session.user_id)
        setup = _totp_setup(session, secret) if secret else None
        return await _account_page(
            request, session, error=str(error), totp_setup=setup, status_code=400
        )
    return await _account_page(
        request, session, notice="Two-step verification is on.", recovery_codes=codes
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
    await _ctx(request).db.run(
        users.disable_totp,
        session.user_name,
        actor=session.user_name,
        client_address=client_address(request),
    )
    return await _account_page(request, session, notice="Two-step verification is off.")


@router.post("/account/recovery-codes")
async def recovery_codes(request: Request, csrf_token: str = Form("")) -> Response:
    session = _session_for_change(request, csrf_token)
    if isinstance(session, Response):
        return session
    context = _ctx(request)
    user = await context.db.run(users.get_user_by_id, session.user_id)
    if user is None or not user.totp_enabled:
        return await _account_page(
            request, session, error="Turn on two-step verification first.", status_code=400
        )
    refused = await _proof_for_change(request, session)
    if refused is not None:
        return refused
    codes = await context.db.run(users.new_recovery_codes, session.user_id, actor=session.user_name)
    return await _account_page(request, session, notice="New recovery codes.", recovery_codes=codes)


# -- single sign-on (OIDC) ------------------------------------------------------------------
def _oidc_message(request: Request, message: str, status_code: int) -> HTMLResponse:
    return _render(
        request,
        "message.html",
        {
            "title": "Sign-in failed",
            "message": message,
            "link_href": "/.gateway/login",
            "link_text": "Back to the login page",
        },
        status_code,
    )


@dataclass(frozen=True)
class PendingSignOn:
    """A single sign-on in progress: the client's pending login, and who started it."""

    login: PendingLogin
    client_address: str
    created_at: float


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
    for _, key in same_address[: max(0, len(same_address) - OIDC_PENDING_PER_ADDRESS + 1)]:
        del waiting[key]
    everyone = sorted((p.created_at, key) for key, p in waiting.items())
    for _, key in everyone[: max(0, len(everyone) - OIDC_PENDING_MAX + 1)]:
        del waiting[key]
    waiting[pending.login.state] = pending


@router.get("/oidc/start")
async def oidc_start(request: Request, next: str = "/", reauthenticate: str = "") -> Response:
    """Start a sign-on: the browser gets a cookie with the ``state``, which the callback
    must come back with. ``reauthenticate=1``: the provider asks for the credentials again
    (``prompt=login``), a fresh proof for a sensitive change."""
    context = _ctx(request)
    if context.oidc is None:
        return _oidc_message(request, "Single sign-on is not set up on this gateway.", 404)
    try:
        url, pending = await context.oidc.begin(
            _safe_next(next), reauthenticate=reauthenticate == "1"
        )
    except OidcError as error:
        return _oidc_message(request, str(error), 502)
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


def _local_name(identity: OidcIdentity, email: str) -> str:
    wanted = identity.preferred_username or email.split("@", 1)[0] or "user"
    cleaned = re.sub(r"[^A-Za-z0-9._@-]", "", wanted).lstrip("._@-")[:48] or "user"
    return cleaned


def _oidc_user(conn: sqlite3.Connection, identity: OidcIdentity, config: OidcConfig) -> User | None:
    """The local user this identity logs in as (created if the configuration admits it)."""
    known = users.get_user_by_oidc(conn, identity.issuer, identity.subject)
    if known is not None:
        return None if known.disabled else known
    email = trusted_email(identity, config)
    linked = users.get_user_by_email(conn, email) if email else None
    decision = admission(identity, linked_user_exists=linked is not None, config=config)
    if decision == "linked" and linked is not None:
        return None if linked.disabled else linked
    if decision != "create" or email is None:
        return None
    base = _local_name(identity, email)
    for suffix in ("", *(f"-{n}" for n in range(2, 100))):
        if users.get_user(conn, base + suffix) is None:
            return users.add_user(
                conn,
                base + suffix,
                role="user",
                password=None,
                actor="oidc",
                email=email,
                oidc=(identity.issuer, identity.subject),
            )
    return None


@router.get("/oidc/callback")
async def oidc_callback(request: Request) -> Response:
    context = _ctx(request)
    if context.oidc is None:
        return _oidc_message(request, "Single sign-on is not set up on this gateway.", 404)
    query = dict(request.query_params)
    started: PendingSignOn | None = context.oidc_pending.pop(query.get("state", ""), None)
    if started is None:
        return _oidc_message(request, "This sign-in has expired; please start again.", 400)
    pending = started.login
    if not state_bound_to_browser(pending, request.cookies.get(OIDC_STATE_COOKIE)):
        await context.db.run(
            audit_record,
            "oidc",
            "login.failure",
            client_address=client_address(request),
            user_agent=user_agent(request),
            reason="the sign-in was started in another browser (state cookie missing or wrong)",
        )
        return _oidc_message(
            request,
            "This sign-in was started in another browser; please start again here.",
            400,
        )
    try:
        identity = await context.oidc.complete(pending, query)
    except OidcError as error:
        await context.db.run(
            audit_record,
            "oidc",
            "login.failure",
            client_address=client_address(request),
            user_agent=user_agent(request),
            reason=str(error),
            detail=error.detail,
        )
        return _oidc_message(request, str(error), 400)
    user = await context.db.run(_oidc_user, identity, context.oidc.config)
    if user is None:
        await context.db.run(
            audit_record,
            identity.email or identity.subject,
            "login.failure",
            client_address=client_address(request),
            user_agent=user_agent(request),
            reason="not admitted by [oidc] allowed_emails / allowed_groups or no linked user",
        )
        return _oidc_message(
            request,
            "Your account at the sign-in provider is not allowed to use this gateway. "
            "Ask the gateway's owner to add you.",
            403,
        )
    response = RedirectResponse(_safe_next(pending.next_url), status_code=303)
    info = await _start_session(request, user, method="oidc", response=response)
    if pending.reauthenticate:
        fresh_proof.record_proof(request, info.id)
    response.delete_cookie(OIDC_STATE_COOKIE, path="/.gateway/oidc/")
    return response


def audit_record(conn: sqlite3.Connection, actor: str, event: str, **kwargs: Any) -> None:
    with transaction(conn):
        audit.record(conn, actor, event, **kwargs)
