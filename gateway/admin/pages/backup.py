"""The backup page: the automatic backups' state, and downloading a backup now.

A download needs a fresh proof (:mod:`gateway.portal.fresh_proof`): the admin's password
or a second-factor code typed into the form, or a proof from the last five minutes; an
account that signs in only through single sign-on is sent to the provider to sign in again.
The passphrase is typed into the page, used for this one backup and never stored or
logged; the download is audited (``backup.downloaded``). Restoring is a CLI action
(``cemm-gateway backup restore``), never a page: it replaces the running gateway's data.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import time

from fastapi import APIRouter, Request, Response

from gateway import backup
from gateway.admin.caller import Caller
from gateway.admin.deps import web_context
from gateway.admin.pages.common import Form
from gateway.admin.rendering import NO_OUTCOME, Outcome, render_outcome
from gateway.admin.security import current_caller, form_csrf_ok
from gateway.i18n import gettext as _
from gateway.policy.credentials import SessionInfo
from gateway.portal import fresh_proof
from gateway.portal.guesses import GuessRefused
from gateway.services import audit, users
from gateway.store.db import transaction
from gateway.tasks.backup import excluded

router = APIRouter(include_in_schema=False)
PAGE = "/backup"


async def _page(request: Request, caller: Caller, outcome: Outcome = NO_OUTCOME) -> Response:
    context = web_context(request)
    status = context.status().backup
    session = context.current_session(request) if caller.via == "session" else None
    fresh = session is not None and fresh_proof.proofs(request).fresh(session.id, time.time())
    user = await context.db.run(users.get_user_by_id, session.user_id) if session else None
    values = {
        "backup": status,
        "can_download": session is not None,
        "fresh": fresh,
        "has_password": bool(user and user.has_password),
        "has_totp": bool(user and user.totp_enabled),
    }
    return render_outcome(request, caller, "backup.html", values, outcome)


@router.get(PAGE)
async def backup_get(request: Request) -> Response:
    return await _page(request, current_caller(request))


def _refusal(error: str, status_code: int = 400) -> Outcome:
    return Outcome(error=error, status_code=status_code)


async def _proof(request: Request, session: SessionInfo, form: Form) -> Response | Outcome | None:
    """None when the session may download: a fresh proof, or one given in the form."""
    password, code = form.text("password"), form.text("code")
    if not password and not code:
        if fresh_proof.proofs(request).fresh(session.id, time.time()):
            return None
        asked = await fresh_proof.require_fresh_proof(request, session, then=PAGE)
        if asked is None or asked.status_code == 303:
            return asked  # a single sign-on account: sign in again at the provider
        return _refusal(_("Type your password (or a code from your authenticator) first."))
    try:
        proven = await fresh_proof.prove(request, session, password=password, code=code)
    except GuessRefused as refused:
        return _refusal(
            _("Too many failed attempts. Try again in {seconds} seconds.").format(
                seconds=refused.retry_after
            ),
            429,
        )
    if not proven:
        return _refusal(_("The password is wrong.") if password else _("That code is not right."))
    return None


def _record(conn: sqlite3.Connection, actor: str, size: int) -> None:
    with transaction(conn):
        audit.record(conn, actor, "backup.downloaded", bytes=size)


@router.post(PAGE)
async def backup_post(request: Request) -> Response:
    caller = current_caller(request)
    form = Form(await request.form())
    context = web_context(request)
    session = context.current_session(request) if caller.via == "session" else None
    if session is None or not form_csrf_ok(caller, form.text("csrf_token")):
        return await _page(request, caller, _refusal(_("Reload the page and try again."), 403))
    proof = await _proof(request, session, form)
    if isinstance(proof, Outcome):
        return await _page(request, caller, proof)
    if proof is not None:
        return proof
    passphrase = form.text("passphrase")
    if not passphrase:
        return await _page(request, caller, _refusal(_("Choose a passphrase for the backup.")))
    if passphrase != form.text("passphrase_again"):
        return await _page(request, caller, _refusal(_("The two passphrases differ.")))
    settings, now = context.settings, time.time()
    try:
        data = await asyncio.to_thread(
            backup.create, settings.data_dir, passphrase, now=now, excluded=excluded(settings)
        )
    except backup.BackupError as error:
        return await _page(
            request, caller, _refusal(_("No backup was made: {error}.").format(error=error), 500)
        )
    await context.db.run(_record, caller.user_name, len(data))
    stamp = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="cemm-gateway-{stamp}{backup.SUFFIX}"',
            "Cache-Control": "no-store",
        },
    )
