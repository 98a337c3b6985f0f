"""The enrolment page under ``/.gateway/enrol``: an account that must have a second factor
(:mod:`gateway.portal.enrolment`) sets up an authenticator app or a passkey, and only then
gets its session.

- ``GET /.gateway/enrol``: the page (an authenticator key and QR code, and - where this
  address can have passkeys - the passkey form; else why not).
- ``POST /.gateway/enrol/totp`` (form: ``code``, ``csrf_token``): turns the authenticator
  on, starts the session, and shows the recovery codes once with a link onwards.
- ``POST /.gateway/enrol/passkey/options`` and ``POST /.gateway/enrol/passkey`` (JSON,
  ``csrf_token``): make a passkey as on the account page; the session starts with it.

Every call needs the enrolment cookie and the enrolment's own CSRF token; without them:
the login page. A TOTP code typed here is a guess through the one gate like any other.
"""

from __future__ import annotations

import json
import sqlite3

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from gateway.auth import tokens, totp
from gateway.policy.passkeys import NoPasskeys
from gateway.portal import enrolment, login
from gateway.portal.enrolment import Enrolment
from gateway.portal.guesses import GuessRefused, guess
from gateway.portal.pages import relying_party, render, web_context
from gateway.portal.passkey_ceremonies import (
    ceremonies,
    finish_registration,
    json_body,
    refusal,
    unavailable_text,
)
from gateway.qr import qr_svg
from gateway.services import login as login_service
from gateway.services import passkeys, users
from gateway.services.errors import ServiceError
from gateway.web.context import client_address
from gateway.web.i18n import gettext as _

router = APIRouter(prefix="/.gateway")


def _to_login() -> Response:
    return RedirectResponse("/.gateway/login", status_code=303)


async def _page(
    request: Request, pending: Enrolment, *, error: str | None = None, status_code: int = 200
) -> Response:
    context = web_context(request)
    secret = await context.db.run(users.pending_totp_secret, pending.user_id)
    if not secret:
        secret = await context.db.run(users.begin_totp, pending.user_id)
    uri = totp.provisioning_uri(secret, account=pending.user_name)
    rp = relying_party(request)
    return render(
        request,
        "enrol.html",
        {
            "csrf_token": pending.csrf_token,
            "user_name": pending.user_name,
            "totp_setup": {"secret": secret, "uri": uri, "qr_svg": qr_svg(uri)},
            "passkey_unavailable": unavailable_text(rp) if isinstance(rp, NoPasskeys) else None,
            "error": error,
        },
        status_code,
    )


@router.get("/enrol")
async def enrol_page(request: Request) -> Response:
    found = enrolment.current(request)
    if found is None:
        return _to_login()
    return await _page(request, found[1])


@router.post("/enrol/totp")
async def enrol_totp(
    request: Request, code: str = Form(""), csrf_token: str = Form("")
) -> Response:
    found = enrolment.current(request)
    if found is None or not tokens.csrf_matches(found[1].csrf_token, csrf_token):
        return _to_login()
    token, pending = found
    try:
        codes = await guess(
            request,
            account=pending.user_name,
            verify=lambda conn: _confirm(conn, pending, code),
        )
    except GuessRefused as refused:
        text = _("Too many failed attempts. Try again in {seconds} seconds.")
        return await _page(
            request, pending, error=text.format(seconds=refused.retry_after), status_code=429
        )
    if codes is None:
        error = _("That code is not right; check the clock of your phone and try again.")
        return await _page(request, pending, error=error, status_code=400)
    response = render(
        request, "enrol_done.html", {"recovery_codes": codes, "next": pending.next_url}
    )
    return await _finish(request, token, pending, response, "password+totp")


def _confirm(conn: sqlite3.Connection, pending: Enrolment, code: str) -> list[str] | None:
    try:
        return users.confirm_totp(conn, pending.user_id, code, actor=pending.user_name)
    except ServiceError:
        return None


async def _finish(
    request: Request, token: str, pending: Enrolment, response: Response, method: str
) -> Response:
    """The session, now that the account has a second factor."""
    try:
        user = await web_context(request).db.run(
            login_service.user_for_second_step, pending.user_id
        )
    except ServiceError:
        return _to_login()
    enrolment.finish(request, token, response)
    await login.start_session(request, user, method=method, response=response)
    return response


async def _json(request: Request) -> tuple[str, Enrolment, dict[str, object]] | Response:
    body = json_body(await request.body(), request.headers.get("content-type", ""))
    if body is None:
        return refusal(415, "unsupported_media_type", "send Content-Type: application/json")
    found = enrolment.current(request)
    if found is None or not tokens.csrf_matches(
        found[1].csrf_token, str(body.get("csrf_token", ""))
    ):
        return refusal(403, "expired", _("The set-up expired; please log in again."))
    return found[0], found[1], body


@router.post("/enrol/passkey/options")
async def enrol_passkey_options(request: Request) -> Response:
    found = await _json(request)
    if isinstance(found, Response):
        return found
    token, pending, _body = found
    rp = relying_party(request)
    if isinstance(rp, NoPasskeys):
        return refusal(409, "passkeys_unavailable", unavailable_text(rp))
    context = web_context(request)
    user = await context.db.run(users.get_user_by_id, pending.user_id)
    if user is None:
        return refusal(403, "forbidden", _("The account no longer exists."))
    ceremony = await context.db.run(passkeys.registration_options, user, rp)
    ceremonies(request).add(
        ceremony, bound_to=token, ticket=f"enrol:{token}", address=client_address(request)
    )
    return JSONResponse({"options": json.loads(ceremony.options)})


@router.post("/enrol/passkey")
async def enrol_passkey(request: Request) -> Response:
    found = await _json(request)
    if isinstance(found, Response):
        return found
    token, pending, body = found
    refused = await finish_registration(
        request, f"enrol:{token}", token, body, user_id=pending.user_id, actor=pending.user_name
    )
    if refused is not None:
        return refused
    response = JSONResponse({"next": pending.next_url})
    return await _finish(request, token, pending, response, "password+passkey")
