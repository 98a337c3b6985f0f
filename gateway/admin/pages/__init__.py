"""The admin pages: server-rendered HTML forms over the same operations as the API
(:mod:`gateway.admin.actions`), one module per resource (allowlist, users, tokens, peers,
sessions, bans, audit, backup, and status for the dashboard), mounted here.

Every form carries the session's CSRF token and names its ``action``; each resource
routes the action to a function of its own (:mod:`gateway.admin.pages.common`). A
destructive action asks first: its form has a ``confirmed`` field that the page's script
(``static/admin.js``) sets after a ``<dialog>``; without script the server answers a
confirmation page instead, which posts the same form again confirmed. The self lock-out
warning of the allowlist is always a page of its own. How the pages are drawn:
:mod:`gateway.admin.rendering`.
"""

from __future__ import annotations

from fastapi import APIRouter

from gateway.admin.pages import (
    allowlist,
    audit,
    backup,
    bans,
    guests,
    notify,
    peers,
    sessions,
    status,
    tokens,
    users,
)
from gateway.admin.pages.peers import PEER_EXPIRY_LABELS, config_panel
from gateway.admin.rendering import NAV, forbidden_page, not_found_page, templates

__all__ = [
    "NAV",
    "PEER_EXPIRY_LABELS",
    "config_panel",
    "forbidden_page",
    "not_found_page",
    "router",
    "templates",
]

router = APIRouter(include_in_schema=False)
for resource in (
    status,
    allowlist,
    users,
    tokens,
    guests,
    peers,
    sessions,
    bans,
    audit,
    notify,
    backup,
):
    router.include_router(resource.router)
