"""Who may use the admin app, and how a state change proves it was meant.

:class:`AdminGuard` runs in front of every request to the web app except the login portal
(``/.gateway/``) and ``/healthz``. It denies by default: a route added later, a static
file or a path that does not exist is protected without anyone remembering to. In order:

1. **Credentials.** The login session cookie (the session from the web port is valid here
   too: browsers send a host's cookies to every port) or ``Authorization: Bearer cgw_...``
   (an API token), looked up in the proxy's snapshot of usable sessions and tokens. None,
   or not usable: a page is redirected to the login page on the same port
   (``/.gateway/login?next=<path>``), the API and ``/openapi.json`` answer 401.
2. **Role.** Only ``admin``. Anyone else gets 403 on every path, existing or not.
3. **State changes** (any method but GET, HEAD, OPTIONS):
   - a browser's ``Sec-Fetch-Site: cross-site`` or ``same-site`` is refused (403).
     ``same-site`` matters here: the CEMM's own pages are served from the same host on
     another port, which browsers count as the same site - and they are the device's
     code, not ours;
   - a request carrying an ``Origin`` must carry one of the gateway's own, with the admin
     port (the Origin rule of :func:`gateway.policy.access.same_origin`, over
     :mod:`gateway.policy.names`): 403 otherwise, with the settings that add a name.
     ``Origin: null`` says nothing (browsers send it for every form when the page's
     referrer policy is ``no-referrer``, as ours is) and is left to the CSRF token;
   - to the API with the session cookie, ``X-CSRF-Token`` must equal the session's CSRF
     token (the JSON login answers it, so does ``GET /api/me``): 403 otherwise. Page forms
     carry the same token as the ``csrf_token`` field, checked by the page routes
     (:func:`form_csrf_ok`; a middleware cannot read a form without consuming it);
   - API tokens need no CSRF token: a browser never attaches one by itself.
4. **Read-only tokens** may use GET and HEAD only - OPTIONS and every state change get 403
   (``read_only_token``): the same rule as on the CEMM's ports
   (:data:`gateway.policy.identity.READ_ONLY_METHODS`). A **scoped token** (limited to
   paths of the CEMM) gets 403 (``scoped_token``) on everything here.

The admin app is only reachable through the admin listener (its own allowlist); the web
and ws ports hand it nothing but ``/.gateway/``, so none of these paths exist there.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from gateway.admin.caller import Caller
from gateway.admin.rendering import forbidden_page
from gateway.auth import tokens
from gateway.policy.access import (
    RESERVED_PREFIX,
    SAFE_METHODS,
    foreign_origin_detail,
    same_origin,
)
from gateway.policy.identity import READ_ONLY_METHODS, identify
from gateway.web.asgi import Next, RequestMiddleware
from gateway.web.context import WebContext, client_address

__all__ = [
    "CSRF_HEADER",
    "AdminGuard",
    "ApiError",
    "Caller",
    "authenticate",
    "current_caller",
    "form_csrf_ok",
    "guarded",
    "is_api_path",
]

logger = logging.getLogger("cemm_gateway.web")

CSRF_HEADER = "X-CSRF-Token"
LOGIN_PATH = "/.gateway/login"
# /metrics checks its own credentials: an admin login or the scrape token.
PUBLIC_PATHS = frozenset({"/healthz", "/metrics"})


class ApiError(Exception):
    """A refusal of the JSON API: answered as ``{"error": code, "detail": text}``."""

    def __init__(self, status: int, error: str, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.extra = extra

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"error": self.error, "detail": self.detail, **self.extra}, status_code=self.status
        )


def is_api_path(path: str) -> bool:
    return path.startswith("/api/") or path == "/openapi.json"


def guarded(path: str) -> bool:
    return not (path.startswith(RESERVED_PREFIX) or path in PUBLIC_PATHS)


def authenticate(context: WebContext, request: Request) -> Caller | None:
    """The caller's usable login session or API token, whatever its role, as the one
    identity decision (:func:`gateway.policy.identity.identify`) reads it. Reads only:
    :func:`note_use` records the use."""
    state = context.state
    identity = identify(
        session_token=request.cookies.get(state.session_cookie),
        authorization=request.headers.get("authorization"),
        auth=state.auth,
        last_seen=state.session_activity,
        now=time.time(),
    )
    if isinstance(identity, str):
        return None
    return Caller(
        user_name=identity.user_name,
        role=identity.role,
        via=identity.via,
        session_id=identity.session_id,
        csrf_token=identity.csrf_token,
        token_id=identity.token_id,
        address=client_address(request),
        read_only=identity.read_only,
        scoped=bool(identity.scopes),
    )


def note_use(context: WebContext, request: Request, caller: Caller) -> None:
    """Record that the caller's credential was used, as the proxy records it: a session's
    activity (:meth:`WebContext.current_session`, which keeps it from going idle), an API
    token's last use (``ProxyState.touch_token``, saved by the recorder's next round)."""
    if caller.via == "session":
        context.current_session(request)
    elif caller.token_id is not None:
        context.state.touch_token(caller.token_id, time.time())


def _refuse(request: Request, status: int, error: str, detail: str) -> Response:
    if is_api_path(request.url.path):
        return ApiError(status, error, detail).response()
    return forbidden_page(request, status, detail)


def check_request(context: WebContext, request: Request) -> Caller | Response:
    """The admin behind ``request``, or the response that refuses it (rules: module doc)."""
    path = request.url.path
    caller = authenticate(context, request)
    if caller is None:
        if is_api_path(path):
            return ApiError(
                401,
                "unauthorized",
                "log in first (POST /.gateway/api/login) or send an admin's API token",
            ).response()
        target = path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='')}", status_code=303)
    if caller.role != "admin":
        return _refuse(
            request,
            403,
            "forbidden",
            f"'{caller.user_name}' is not an admin; the admin pages need an admin account",
        )
    if caller.scoped:
        return _refuse(
            request, 403, "scoped_token", "this API token is limited to paths of the CEMM"
        )
    if caller.read_only and request.method not in READ_ONLY_METHODS:
        return _refuse(request, 403, "read_only_token", "this API token may only read")
    if request.method not in SAFE_METHODS:
        origin = request.headers.get("origin")
        fetch_site = request.headers.get("sec-fetch-site")
        # The Origin rule of the CEMM's ports, with the admin port as the page's port.
        if not same_origin(
            origin,
            fetch_site,
            names=context.state.access.names,
            page_port=context.settings.listen.admin_port,
        ):
            return _refuse(request, 403, "foreign_origin", foreign_origin_detail(origin))
        if (
            caller.via == "session"
            and is_api_path(path)
            and not tokens.csrf_matches(caller.csrf_token, request.headers.get(CSRF_HEADER))
        ):
            return ApiError(
                403,
                "csrf",
                f"send the session's CSRF token as {CSRF_HEADER} (GET /api/me answers it)",
            ).response()
    return caller


class AdminGuard(RequestMiddleware):
    """The middleware that applies :func:`check_request` to every guarded path."""

    async def handle(self, request: Request, call_next: Next) -> Response | None:
        if not guarded(request.url.path):
            await call_next(None)
            return None
        checked = check_request(self.context, request)
        if isinstance(checked, Response):
            return checked
        note_use(self.context, request, checked)
        request.state.caller = checked
        await call_next(None)
        return None


def current_caller(request: Request) -> Caller:
    """The admin the guard let through (a route dependency)."""
    caller: Caller | None = getattr(request.state, "caller", None)
    if caller is None:  # the guard did not run: never serve such a request
        raise ApiError(401, "unauthorized", "log in first")
    return caller


def form_csrf_ok(caller: Caller, submitted: str) -> bool:
    """Whether a page form carried the session's CSRF token (API tokens have no forms)."""
    return caller.via == "session" and tokens.csrf_matches(caller.csrf_token, submitted)
