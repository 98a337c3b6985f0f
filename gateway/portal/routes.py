"""The login portal under ``/.gateway/``: log in (password, second factor, OIDC), log out,
and each user's account page.

Every state change is protected against cross-site requests: the login form by a
double-submit token (a cookie only this site can set, echoed in the form), the JSON login
by requiring ``Content-Type: application/json`` (a cross-site page cannot send that
without a CORS preflight, which is never granted), and everything done while logged in by
the session's own CSRF token. A login always issues a new session token (no fixation).
Failed attempts are counted per account and per address (:mod:`gateway.services.bans`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from gateway.auth import tokens, totp
from gateway.auth.oidc import OidcConfig, OidcError, OidcIdentity, admission, trusted_email
from gateway.policy.credentials import SessionInfo
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


def _ctx(request: Request) -> WebContext:
    context: WebContext = request.app.state.context
    return context


def _safe_next(value: str | None) -> str:
    return tokens.is_safe_next(value or "/")


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M")


def _render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


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
    """Gate, delay, verify, count: the part every login path shares."""
    context = _ctx(request)
    address = client_address(request)
    subjects = bans.subjects(username, address, context.never_ban)
    gate = await context.db.run(bans.gate, subjects, context.bruteforce, now=time.time())
    if gate.banned_until is not None:
        wait = max(1, int(gate.banned_until - time.time()))
        raise LoginRefused(429, "Too many failed attempts.", retry_after=wait)
    if gate.delay:
        await asyncio.sleep(gate.delay)
    user = await context.db.run(users.authenticate, username, password)
    if user is None:
        await _record_failure(request, username)
        raise LoginRefused(401, "Wrong user name or password.")
    return user


async def _record_failure(request: Request, username: str) -> None:
    context = _ctx(request)
    subjects = bans.subjects(username, client_address(request), context.never_ban)
    await context.db.run(
        bans.record_failure,
        subjects,
        context.bruteforce,
        client_address=client_address(request),
        user_agent=user_agent(request),
        user_name=username,
    )


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
    context.auth_changed()
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
    return info


def _challenge(request: Request, user: User, next_url: str) -> str:
    context = _ctx(request)
    context.prune(time.time())
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
    pending.attempts += 1
    used = await context.db.run(users.verify_second_factor, pending.user_id, code)
    if used is None:
        await _record_failure(request, pending.user_name)
        response = _render(
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
        return response
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
            used = await _ctx(request).db.run(users.verify_second_factor, user.id, str(code))
            if used is None:
                await _record_failure(request, user.name)
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
@router.post("/logout")
async def logout(request: Request, csrf_token: str = Form("")) -> Response:
    context = _ctx(request)
    session = context.current_session(request)
    if session is not None:
        if not tokens.csrf_matches(session.csrf_token, csrf_token):
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
        await context.db.run(
            sessions.revoke_session,
            session.id,
            actor=session.user_name,
            reason="logout",
            event="logout",
            client_address=client_address(request),
        )
        context.auth_changed()
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
    try:
        await _check_password(request, session.user_name, current_password)
    except LoginRefused as refused:
        message = "The current password is wrong." if refused.status == 401 else str(refused)
        return await _account_page(request, session, error=message, status_code=refused.status)
    try:
        await context.db.run(
            users.set_password,
            session.user_name,
            new_password,
            actor=session.user_name,
            keep_session=session.id,
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
    session = _session_for_change(request, csrf_token)
    if isinstance(session, Response):
        return session
    secret = await _ctx(request).db.run(users.begin_totp, session.user_id)
    return await _account_page(request, session, totp_setup=_totp_setup(session, secret))


def _totp_setup(session: SessionInfo, secret: str) -> dict[str, str]:
    uri = totp.provisioning_uri(secret, account=session.user_name)
    return {"secret": secret, "uri": uri, "qr_svg": totp.qr_svg(uri)}


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
    session = _session_for_change(request, csrf_token)
    if isinstance(session, Response):
        return session
    context = _ctx(request)
    if await context.db.run(users.verify_second_factor, session.user_id, code) is None:
        await _record_failure(request, session.user_name)
        return await _account_page(
            request, session, error="That code is not right.", status_code=400
        )
    await context.db.run(
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


@router.get("/oidc/start")
async def oidc_start(request: Request, next: str = "/") -> Response:
    context = _ctx(request)
    if context.oidc is None:
        return _oidc_message(request, "Single sign-on is not set up on this gateway.", 404)
    context.prune(time.time())
    try:
        url, pending = await context.oidc.begin(_safe_next(next))
    except OidcError as error:
        return _oidc_message(request, str(error), 502)
    context.oidc_pending[pending.state] = pending
    return RedirectResponse(url, status_code=303)


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
    pending = context.oidc_pending.pop(query.get("state", ""), None)
    if pending is None:
        return _oidc_message(request, "This sign-in has expired; please start again.", 400)
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
    await _start_session(request, user, method="oidc", response=response)
    return response


def audit_record(conn: sqlite3.Connection, actor: str, event: str, **kwargs: Any) -> None:
    with transaction(conn):
        audit.record(conn, actor, event, **kwargs)
