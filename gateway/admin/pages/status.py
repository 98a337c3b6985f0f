"""The dashboard page: what the gateway, the CEMM and the VPN are doing
(:mod:`gateway.admin.dashboard`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from gateway.admin.dashboard import collect
from gateway.admin.deps import web_context
from gateway.admin.rendering import render
from gateway.admin.security import current_caller

router = APIRouter(include_in_schema=False)


@router.get("/")
async def dashboard(request: Request) -> Response:
    caller = current_caller(request)
    data = await collect(web_context(request), current_session=caller.session_id)
    return render(request, caller, "dashboard.html", {"dashboard": data})
