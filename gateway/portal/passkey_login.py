"""Logging in with a passkey: alone (no user name typed), or as the second step after a
password, next to a TOTP code.

- ``POST /.gateway/login/passkey/options`` ``{"csrf_token", "challenge"?}``: the options
  for ``navigator.credentials.get`` and a ``ticket``. Without ``challenge``: any
  discoverable passkey made for this relying party (the browser's autofill and the "Log in
  with a passkey" button). With ``challenge`` (a waiting second-factor step): that
  account's passkeys only.
- ``POST /.gateway/login/passkey`` ``{"csrf_token", "ticket", "credential", "next",
  "challenge"?}``: the browser's answer. A good one starts a session (method ``passkey``,
  or ``password+passkey`` for the second step) and answers ``{"next": PATH}``.

Both take ``application/json`` only and the login form's double-submit token. Every answer
is one guess through the one gate (:func:`gateway.portal.guesses.guess`), counted against
the account the credential belongs to (an unknown credential: the address only), so a
banned account, device or address is refused (429) before the answer is looked at, and a
refused answer counts as a failed login. A second step takes at most
``SECOND_FACTOR_ATTEMPTS`` answers, passkey or code, as the code step does. The checks
themselves are :func:`gateway.services.passkeys.check_assertion`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from gateway.policy.passkeys import NoPasskeys
from gateway.portal import login
from gateway.portal.guesses import GuessRefused, guess
from gateway.portal.pages import login_csrf_ok, relying_party, safe_next, web_context
from gateway.portal.passkey_ceremonies import (
    ceremonies,
    json_body,
    refusal,
    unavailable_text,
)
from gateway.services import login as login_service
from gateway.services import passkeys
from gateway.services.errors import Forbidden
from gateway.web.context import PendingSecondFactor, client_address
from gateway.web.i18n import gettext as _

router = APIRouter(prefix="/.gateway")


async def _read(request: Request) -> dict[str, Any] | Response:
    body = json_body(await request.body(), request.headers.get("content-type", ""))
    if body is None:
        return refusal(415, "unsupported_media_type", "send Content-Type: application/json")
    if not login_csrf_ok(request, str(body.get("csrf_token", ""))):
        return refusal(403, "expired", _("The form expired; reload the page."))
    return body


def _pending(request: Request, challenge: str) -> PendingSecondFactor | None:
    pending = web_context(request).second_factor.get(challenge) if challenge else None
    if (
        pending is None
        or pending.expires_at <= time.time()
        or pending.attempts >= login.SECOND_FACTOR_ATTEMPTS
    ):
        return None
    return pending


def _expired() -> Response:
    return refusal(403, "expired", _("The verification step expired; please log in again."))


@router.post("/login/passkey/options")
async def passkey_options(request: Request) -> Response:
    body = await _read(request)
    if isinstance(body, Response):
        return body
    rp = relying_party(request)
    if isinstance(rp, NoPasskeys):
        return refusal(409, "passkeys_unavailable", unavailable_text(rp))
    challenge = str(body.get("challenge") or "")
    pending = _pending(request, challenge) if challenge else None
    if challenge and pending is None:
        return _expired()
    user_id = pending.user_id if pending else None
    ceremony = await web_context(request).db.run(
        passkeys.authentication_options, rp, user_id=user_id
    )
    ticket = ceremonies(request).add(ceremony, bound_to=challenge, address=client_address(request))
    return JSONResponse({"options": json.loads(ceremony.options), "ticket": ticket})


@router.post("/login/passkey")
async def passkey_login(request: Request) -> Response:
    body = await _read(request)
    if isinstance(body, Response):
        return body
    challenge = str(body.get("challenge") or "")
    pending = _pending(request, challenge) if challenge else None
    if challenge and pending is None:
        return _expired()
    ceremony = ceremonies(request).take(str(body.get("ticket", "")), bound_to=challenge)
    credential = body.get("credential")
    if ceremony is None or not isinstance(credential, dict):
        return refusal(400, "expired", _("The passkey request expired; please try again."))
    context = web_context(request)
    if pending is not None:
        account, user_id = pending.user_name, pending.user_id
    else:
        account = await context.db.run(passkeys.credential_owner, credential)
        user_id = None
    try:
        user = await guess(
            request,
            account=account,
            verify=lambda conn: passkeys.check_assertion(
                conn, ceremony, credential, user_id=user_id
            ),
        )
    except GuessRefused as refused:
        detail = _("Too many failed attempts. Try again in {seconds} seconds.").format(
            seconds=refused.retry_after
        )
        return refusal(
            429, "too_many_attempts", detail, **{"Retry-After": str(refused.retry_after)}
        )
    if pending is not None:
        pending.attempts += 1
    if user is None:
        return refusal(401, "passkey_refused", _("That passkey was not accepted."))
    method, next_url = "passkey", safe_next(str(body.get("next") or "/"))
    if pending is not None:
        context.second_factor.pop(challenge, None)
        method, next_url = "password+passkey", pending.next_url
        try:
            user = await context.db.run(login_service.user_for_second_step, pending.user_id)
        except Forbidden as refused:
            return refusal(403, "forbidden", refused.translated())
    response = JSONResponse({"next": next_url})
    await login.start_session(request, user, method=method, response=response)
    return response
