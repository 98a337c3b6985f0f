"""The gateway's web app (FastAPI), served by uvicorn on an internal loopback port.

Clients never reach it directly: the admin listener, and the reserved prefix
``/.gateway/`` on the web and ws ports, are proxied to it by the same mitmproxy front
door that guards the CEMM (allowlist, request hygiene, forwarding headers). The proxy
adds a per-process secret header to every request it forwards here; a request without it
(anything else on this host talking to the loopback port) is refused, and the client
address comes from the ``X-Forwarded-For`` the proxy itself set.

Routes: the login portal (:mod:`gateway.portal.routes`) and ``/healthz``.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from gateway.portal import routes as portal
from gateway.web.context import WebContext

INTERNAL_HEADER = "x-cemm-gateway-internal"
PORTAL_STATIC = Path(__file__).resolve().parent.parent / "portal" / "static"

# Pages of the gateway itself: no script at all, styles from our own stylesheet only.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def create_web_app(context: WebContext) -> FastAPI:
    app = FastAPI(
        title="cemm-gateway", version="0.1.0", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.context = context

    @app.middleware("http")
    async def front_door_only(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        presented = request.headers.get(INTERNAL_HEADER, "")
        if not hmac.compare_digest(presented.encode(), context.state.internal_secret.encode()):
            return JSONResponse({"detail": "not through the gateway"}, status_code=403)
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith("/.gateway/static/"):
            response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """The gateway is up. The CEMM's state is reported, never a reason to fail."""
        return {"status": "ok", **context.status()}

    app.include_router(portal.router)
    app.mount("/.gateway/static", StaticFiles(directory=PORTAL_STATIC), name="portal-static")
    return app
