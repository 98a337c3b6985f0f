"""The admin JSON API under ``/api/``: every operation of the admin pages, for scripts,
one module per resource (allowlist, users, tokens, peers, sessions, bans, audit, and
status for ``/api/me`` and ``/api/status``), mounted here.

Authentication and the CSRF rule are the guard's (:mod:`gateway.admin.security`): the
login session cookie plus ``X-CSRF-Token`` on every state change, or an admin's API token
(``Authorization: Bearer cgw_...``). The OpenAPI document at ``/openapi.json`` describes
every operation, its answers and its refusals (``{"error", "detail"}``); see
:func:`document_security` for how it states the credentials. How a refusal is answered -
a service's, or a request that does not fit the schema - is decided in one place,
:mod:`gateway.admin.api.errors`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.admin.api import (
    allowlist,
    audit,
    bans,
    guests,
    passkeys,
    peers,
    sessions,
    status,
    tokens,
    users,
)
from gateway.admin.api.errors import ApiRoute
from gateway.admin.security import CSRF_HEADER

__all__ = ["document_security", "router"]

# Each resource's router documents the refusals every operation shares (common.py).
router = APIRouter(prefix="/api", tags=["admin"], route_class=ApiRoute)
for resource in (status, allowlist, users, passkeys, tokens, sessions, bans, peers, audit, guests):
    router.include_router(resource.router)


def document_security(schema: dict[str, Any], *, cookie_name: str) -> dict[str, Any]:
    """State in the OpenAPI document how the API is authenticated.

    Reading needs the session cookie or an API token; a state change needs the cookie
    *and* the CSRF header, or an API token. (FastAPI's security dependencies could only
    say "any one of these".)
    """
    components = schema.setdefault("components", {})
    components["securitySchemes"] = {
        "session": {
            "type": "apiKey",
            "in": "cookie",
            "name": cookie_name,
            "description": "The login session (POST /.gateway/api/login)",
        },
        "csrf": {
            "type": "apiKey",
            "in": "header",
            "name": CSRF_HEADER,
            "description": "The session's CSRF token (the login answer, or GET /api/me)",
        },
        "apiToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "An admin's API token, cgw_...; a read-only one may only read",
        },
    }
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            if method in ("get", "head"):
                operation["security"] = [{"session": []}, {"apiToken": []}]
            else:
                operation["security"] = [{"session": [], "csrf": []}, {"apiToken": []}]
    return schema
