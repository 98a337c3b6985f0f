"""The gateway's web app (FastAPI), served by uvicorn on an internal loopback port.

Clients never reach it directly: the admin listener, and the reserved prefix
``/.gateway/`` on the web and ws ports, are proxied to it by the same mitmproxy front
door that guards the CEMM (allowlist, request hygiene, forwarding headers). The proxy
adds a per-process secret header to every request it forwards here; a request without it
(anything else on this host talking to the loopback port) is refused, and the client
address comes from the ``X-Forwarded-For`` the proxy itself set.

Routes: the login portal (:mod:`gateway.portal.routes`, under ``/.gateway/``), ``/healthz``,
and the admin app (:mod:`gateway.admin`: pages, the JSON API under ``/api/``, its OpenAPI
document at ``/openapi.json`` and its files under ``/static/``). Only the admin listener
forwards paths outside ``/.gateway/`` here, and every one of them needs an admin login
(:mod:`gateway.admin.security`).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from gateway.admin import api as admin_api
from gateway.admin import pages as admin_pages
from gateway.admin.security import AdminGuard, ApiError, guarded, is_api_path
from gateway.portal import guest, peer_link
from gateway.portal import language as account_language
from gateway.portal import routes as portal
from gateway.proxy.state import INTERNAL_HEADER
from gateway.services import audit
from gateway.version import version
from gateway.web import metrics_routes
from gateway.web.asgi import Next, RequestMiddleware
from gateway.web.context import WebContext, client_address, user_agent
from gateway.web.language import ReadersLanguage

logger = logging.getLogger("cemm_gateway.web")

PORTAL_STATIC = Path(__file__).resolve().parent.parent / "portal" / "static"
ADMIN_STATIC = Path(__file__).resolve().parent.parent / "admin" / "static"

# Pages of the gateway itself: no script at all, styles from our own stylesheet only.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# The portal's pages may run the portal's own script files (passkeys) and call it back.
PORTAL_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# The admin pages may also run this app's own script files (the confirmation dialogs).
ADMIN_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


# How uvicorn serves the app. Only the proxy connects to it, and the proxy decides when an
# idle connection ends ([limits] idle_timeout towards the browser): the app never closes one
# first, since its close could cross a request being forwarded (the dashboard asks every 5 s,
# uvicorn's default keep-alive is 5 s), which the proxy would answer with a 502.
SERVER_OPTIONS: dict[str, Any] = {
    "log_config": None,
    "access_log": False,
    "lifespan": "off",
    "server_header": False,
    "timeout_keep_alive": 24 * 3600,
}


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route)."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in app.router.routes):
            allowed.append(method)
    return allowed


def create_web_app(context: WebContext) -> FastAPI:
    app = FastAPI(
        title="cemm-gateway admin API",
        version=version(),
        description="Manage the gateway: allowlist, users, API tokens, sessions, bans, audit "
        "log. Log in with POST /.gateway/api/login, then send the cookie and, with every "
        "change, the session's CSRF token as X-CSRF-Token; or an admin's API token.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.context = context
    _document(app, context)
    # Each one added runs outside those added before it: the front door first (the secret
    # check), then the reader's language, then the admin guard.
    app.add_middleware(AdminGuard, context=context)
    app.add_middleware(ReadersLanguage, context=context)
    app.add_middleware(FrontDoor, context=context)
    app.get("/healthz", include_in_schema=False)(_healthz(context))
    _handle_errors(app)
    app.include_router(portal.router, include_in_schema=False)
    app.include_router(peer_link.router, include_in_schema=False)
    app.include_router(account_language.router, include_in_schema=False)
    app.include_router(guest.router, include_in_schema=False)
    app.include_router(admin_api.router)
    app.include_router(admin_pages.router)
    app.include_router(metrics_routes.router)
    app.mount("/.gateway/static", StaticFiles(directory=PORTAL_STATIC), name="portal-static")
    app.mount("/static", StaticFiles(directory=ADMIN_STATIC), name="admin-static")
    return app


def _document(app: FastAPI, context: WebContext) -> None:
    """The OpenAPI document, with the admin API's security schemes."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = admin_api.document_security(
                schema, cookie_name=context.state.session_cookie
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class FrontDoor(RequestMiddleware):
    """Only requests that came through the proxy (its secret header); the security headers
    on every answer; a change to logins in force before the answer leaves."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The web app serves HTTP only. It has no WebSocket route; one added later would
        # pass by the secret check and the admin guard, so every WebSocket ends here.
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await super().__call__(scope, receive, send)

    async def handle(self, request: Request, call_next: Next) -> Response | None:
        context = self.context
        if not context.state.vouched(request.headers.get(INTERNAL_HEADER, "")):
            return JSONResponse(
                {"detail": "not through the gateway"}, status_code=403, headers=SECURITY_HEADERS
            )
        path = request.url.path

        async def secured(headers: MutableHeaders) -> None:
            # A change to logins made by this request is in force before the answer
            # leaves, so the client's next request is decided on it (gateway/logins.py).
            await context.logins.settled()
            if guarded(path):
                headers.setdefault("Content-Security-Policy", ADMIN_CSP)
            elif path.startswith("/.gateway/"):
                headers.setdefault("Content-Security-Policy", PORTAL_CSP)
            for name, value in SECURITY_HEADERS.items():
                headers.setdefault(name, value)
            if path.startswith("/.gateway/static/"):
                headers["Cache-Control"] = "public, max-age=3600"

        with audit.requested_by(client_address(request), user_agent(request)):
            await call_next(secured)
        return None


def _healthz(context: WebContext) -> Callable[[Request], Awaitable[dict[str, Any]]]:
    async def healthz(request: Request) -> dict[str, Any]:
        """The gateway is up (200 while it runs). The CEMM's state is reported, never a
        reason to fail. Anyone inside ``admin_networks`` may ask, so the answer says only
        whether each CEMM port answers; the details (the CEMM's address and MAC, clock
        drift, open WebSocket sessions, VPN peers, denials) need what ``/metrics`` needs."""
        status = context.status()
        if metrics_routes.authorized(context, request):
            return {"status": "ok", **status.to_dict()}
        # "unknown" before the first check of the CEMM monitor.
        ports = {"web": status.port_state("http"), "websocket": status.port_state("ws")}
        return {"status": "ok", "cemm": ports}

    return healthz


def _wants_json(request: Request) -> bool:
    """An API call, or a client that speaks JSON: an error answers it in JSON."""
    return request.url.path.startswith(("/.gateway/api/", "/api/")) or "json" in (
        request.headers.get("accept", "") + request.headers.get("content-type", "")
    )


def _handle_errors(app: FastAPI) -> None:
    """Errors as the API (JSON), the admin pages (a page), a full disk (503) and anything
    unforeseen (500, with the security headers) say them."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> Response:
        return error.response()

    @app.exception_handler(sqlite3.Error)
    async def storage_error(request: Request, error: sqlite3.Error) -> Response:
        # A full or read-only data volume: say so, instead of a bare 500. Proxying of
        # admitted traffic goes on; only changes (logins among them) cannot be saved.
        logger.error("the database could not be written: %s", error)
        message = (
            f"The gateway cannot save changes: its data storage failed ({error}). "
            "If the data volume is full, free some space; nothing needs a restart."
        )
        if _wants_json(request):
            return JSONResponse({"error": "storage_unavailable", "detail": message}, 503)
        return PlainTextResponse(message, status_code=503)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        # Starlette answers an unhandled error outside every middleware, the front door's
        # header edit included, and then raises it again for the server to log: the
        # security headers go on here.
        detail = "The gateway could not answer this request; its log says why."
        response: Response
        if _wants_json(request):
            response = JSONResponse({"error": "internal_error", "detail": detail}, 500)
        else:
            response = PlainTextResponse(detail, status_code=500)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        path = request.url.path
        if error.status_code == 404 and guarded(path) and not is_api_path(path):
            return admin_pages.not_found_page(request)
        if is_api_path(path):
            code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(
                error.status_code, "http"
            )
            response = ApiError(error.status_code, code, str(error.detail)).response()
            response.headers.update(error.headers or {})
            if error.status_code == 405:
                response.headers["Allow"] = ", ".join(_allowed_methods(app, request))
            return response
        return JSONResponse(
            {"detail": error.detail}, status_code=error.status_code, headers=error.headers
        )
