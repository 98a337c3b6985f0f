"""``/api/me`` (who is asking, and the session's CSRF token) and ``/api/status`` (what the
dashboard shows)."""

from __future__ import annotations

from gateway.admin.api.common import CallerDep, ContextDep, resource_router
from gateway.admin.dashboard import Dashboard, collect
from gateway.admin.models import MeOut

router = resource_router()


@router.get("/me", response_model=MeOut, summary="The caller and the session's CSRF token")
async def me(caller: CallerDep) -> MeOut:
    return MeOut(
        user=caller.user_name,
        role=caller.role,
        via=caller.via,
        session_id=caller.session_id,
        csrf_token=caller.csrf_token,
        client_address=caller.address,
    )


@router.get("/status", response_model=Dashboard, summary="What the dashboard shows")
async def status(caller: CallerDep, context: ContextDep) -> Dashboard:
    return await collect(context, current_session=caller.session_id)
