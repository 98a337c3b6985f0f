"""``POST /.gateway/account/sessions/others``: "Log out everywhere else" on the account page.

Ends every other session of the signed-in person (the one in this browser stays), with the
session's CSRF token like every change on the account page. Each ended session is in the
audit log as ``session.revoke`` by the person themself, and admits nothing from the
moment the answer leaves (the proxy is told before it does).
"""

from __future__ import annotations

import sqlite3
import time

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from gateway.policy.credentials import SessionInfo
from gateway.portal.account import _session_for_change, account_page
from gateway.portal.pages import web_context
from gateway.services import sessions
from gateway.web.context import client_address
from gateway.web.i18n import ngettext

router = APIRouter(prefix="/.gateway")


def end_other_sessions(
    conn: sqlite3.Connection,
    session: SessionInfo,
    *,
    idle_timeout: float,
    client_address: str | None,
) -> list[str]:
    """End the person's sessions other than ``session``; their ids."""
    others = [
        found.id
        for found in sessions.list_sessions(
            conn, now=time.time(), idle_timeout=idle_timeout, user_id=session.user_id
        )
        if found.id != session.id
    ]
    for session_id in others:
        sessions.revoke_session(
            conn,
            session_id,
            actor=session.user_name,
            reason="logout_elsewhere",
            client_address=client_address,
        )
    return others


@router.post("/account/sessions/others")
async def log_out_elsewhere(request: Request, csrf_token: str = Form("")) -> Response:
    """Log out everywhere else; back to the account page with how many ended."""
    session = _session_for_change(request, csrf_token)
    if isinstance(session, Response):
        return session
    context = web_context(request)
    ended = await context.db.run(
        end_other_sessions,
        session,
        idle_timeout=context.settings.auth.session_idle_timeout,
        client_address=client_address(request),
    )
    for session_id in ended:
        context.session_ended(session_id)
    notice = ngettext(
        "%(count)d other session was logged out.",
        "%(count)d other sessions were logged out.",
        len(ended),
    ) % {"count": len(ended)}
    return await account_page(request, session, notice=notice)
