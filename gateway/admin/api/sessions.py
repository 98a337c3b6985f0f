"""``/api/sessions``: the usable login sessions, ending one."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from gateway.admin.actions import sessions as actions
from gateway.admin.api.common import (
    NOT_FOUND,
    CallerDep,
    ContextDep,
    IdText,
    UserQuery,
    resource_router,
)
from gateway.admin.models import SessionOut

router = resource_router()


@router.get(
    "/sessions", response_model=list[SessionOut], summary="Active sessions", responses=NOT_FOUND
)
async def sessions_list(caller: CallerDep, context: ContextDep, user: UserQuery = None) -> Any:
    return await actions.list_sessions(context, caller, user=user)


@router.delete(
    "/sessions/{session_id}",
    status_code=204,
    response_class=Response,
    summary="End a session (its WebSockets close at once)",
    responses=NOT_FOUND,
)
async def sessions_revoke(session_id: IdText, caller: CallerDep, context: ContextDep) -> Response:
    await actions.revoke_session(context, caller, session_id)
    return Response(status_code=204)
