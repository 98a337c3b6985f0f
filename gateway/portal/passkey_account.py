"""Passkeys on the account page: make one (after a fresh proof), list, remove.

- ``POST /.gateway/account/passkeys/options`` ``{"csrf_token"}`` (JSON): the options for
  ``navigator.credentials.create`` (discoverable, user verification required, attestation
  ``none``), for this session only; 401 ``fresh_proof`` without a proof from the last five
  minutes (:mod:`gateway.portal.fresh_proof`): the page then sends the form
  ``POST /.gateway/account/passkeys/begin``, which asks for the password (or a code) and
  returns to the account page.
- ``POST /.gateway/account/passkeys`` ``{"csrf_token", "name", "credential"}`` (JSON):
  stores the passkey the browser made for the waiting options, with the relying-party ID
  they were made for.
- ``POST /.gateway/account/passkeys/{id}/remove`` (form): removes one of one's own
  passkeys, after a fresh proof.

Every call needs the session and its CSRF token; a guest link's session has no account.
"""

from __future__ import annotations

import json
import time

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response

from gateway.policy.credentials import SessionInfo
from gateway.policy.passkeys import NoPasskeys
from gateway.portal import fresh_proof
from gateway.portal.account import _proof_for_change, _session_for_change, account_page
from gateway.portal.pages import ACCOUNT_PAGE, relying_party, web_context
from gateway.portal.passkey_ceremonies import (
    ceremonies,
    finish_registration,
    json_body,
    refusal,
    unavailable_text,
)
from gateway.services import passkeys, users
from gateway.services.errors import ServiceError
from gateway.web.context import client_address
from gateway.web.i18n import gettext as _

router = APIRouter(prefix="/.gateway")


async def _session(request: Request) -> tuple[SessionInfo, dict[str, object]] | Response:
    body = json_body(await request.body(), request.headers.get("content-type", ""))
    if body is None:
        return refusal(415, "unsupported_media_type", "send Content-Type: application/json")
    session = _session_for_change(request, str(body.get("csrf_token", "")))
    if isinstance(session, Response):
        return refusal(
            403 if session.status_code != 303 else 401,
            "forbidden",
            _("Your session ended or the page expired; reload the page."),
        )
    return session, body


@router.post("/account/passkeys/options")
async def registration_options(request: Request) -> Response:
    found = await _session(request)
    if isinstance(found, Response):
        return found
    session, _body = found
    if not fresh_proof.proofs(request).fresh(session.id, time.time()):
        return refusal(401, "fresh_proof", _("Confirm it is you first."))
    rp = relying_party(request)
    if isinstance(rp, NoPasskeys):
        return refusal(409, "passkeys_unavailable", unavailable_text(rp))
    context = web_context(request)
    user = await context.db.run(users.get_user_by_id, session.user_id)
    if user is None:
        return refusal(403, "forbidden", _("The account no longer exists."))
    ceremony = await context.db.run(passkeys.registration_options, user, rp)
    ceremonies(request).add(
        ceremony,
        bound_to=session.id,
        ticket=f"register:{session.id}",
        address=client_address(request),
    )
    return JSONResponse({"options": json.loads(ceremony.options)})


@router.post("/account/passkeys")
async def register(request: Request) -> Response:
    found = await _session(request)
    if isinstance(found, Response):
        return found
    session, body = found
    refused = await finish_registration(
        request,
        f"register:{session.id}",
        session.id,
        body,
        user_id=session.user_id,
        actor=session.user_name,
    )
    if refused is not None:
        return refused
    return JSONResponse({"next": ACCOUNT_PAGE})


@router.post("/account/passkeys/begin")
async def begin(request: Request, csrf_token: str = Form("")) -> Response:
    """Without script, or without a fresh proof: ask for the proof, then the account page."""
    session = _session_for_change(request, csrf_token)
    if isinstance(session, Response):
        return session
    refused = await _proof_for_change(request, session)
    if refused is not None:
        return refused
    return await account_page(request, session)


@router.post("/account/passkeys/{passkey_id}/remove")
async def remove(request: Request, passkey_id: int, csrf_token: str = Form("")) -> Response:
    session = _session_for_change(request, csrf_token)
    if isinstance(session, Response):
        return session
    refused = await _proof_for_change(request, session)
    if refused is not None:
        return refused
    try:
        removed = await web_context(request).db.run(
            passkeys.remove_passkey,
            passkey_id,
            actor=session.user_name,
            user_id=session.user_id,
        )
    except ServiceError as error:
        return await account_page(request, session, error=error.translated(), status_code=400)
    notice = _("Passkey “{name}” removed.").format(name=removed.name)
    return await account_page(request, session, notice=notice)
