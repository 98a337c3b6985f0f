"""The dashboard page: what the gateway, the CEMM and the VPN are doing
(:mod:`gateway.admin.dashboard`), and ``/dashboard/live``: the same page's content alone,
which the page's script asks for every few seconds to stay current without reloading
(short polling: answers through mitmproxy are buffered, so nothing is streamed)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from gateway.admin.dashboard import collect
from gateway.admin.deps import web_context
from gateway.admin.rendering import render, templates
from gateway.admin.security import current_caller

router = APIRouter(include_in_schema=False)


@router.get("/")
async def dashboard(request: Request) -> Response:
    caller = current_caller(request)
    data = await collect(web_context(request), current_session=caller.session_id)
    return render(request, caller, "dashboard.html", {"dashboard": data})


@router.get("/dashboard/live")
async def dashboard_live(request: Request) -> Response:
    """The dashboard's ``content`` block, rendered as on the page, without the frame."""
    caller = current_caller(request)
    data = await collect(web_context(request), current_session=caller.session_id)
    page = templates.get_template("dashboard.html")
    context = page.new_context({"request": request, "caller": caller, "dashboard": data})
    fragment = "".join(page.blocks["content"](context))
    return HTMLResponse(fragment, headers={"Cache-Control": "no-store"})
