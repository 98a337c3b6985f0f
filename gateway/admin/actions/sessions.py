"""Login sessions as the admin app shows and ends them."""

from __future__ import annotations

import time

from gateway.admin.caller import Caller
from gateway.admin.models import SessionOut
from gateway.admin.views import session_out
from gateway.services import sessions
from gateway.web.context import WebContext


def _live_ids(context: WebContext) -> set[str] | None:
    return set(context.status().websocket_sessions)


async def list_sessions(
    context: WebContext, caller: Caller, *, user: str | None = None
) -> list[SessionOut]:
    listed = await context.db.run(
        sessions.list_user_sessions,
        user,
        now=time.time(),
        idle_timeout=context.settings.auth.session_idle_timeout,
    )
    live = _live_ids(context)
    return [session_out(context, s, current=caller.session_id, live_ids=live) for s in listed]


async def revoke_session(context: WebContext, caller: Caller, session_id: str) -> SessionOut:
    """End one session; returns what it was."""
    session = await context.db.run(
        sessions.end_session,
        session_id,
        now=time.time(),
        idle_timeout=context.settings.auth.session_idle_timeout,
        actor=caller.user_name,
        client_address=caller.address,
    )
    context.session_ended(session_id)
    return session_out(context, session, current=caller.session_id)
