"""Who is making a request to the admin app, as the guard (:mod:`gateway.admin.security`)
established it: a value every layer of the app may read, and none may change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Caller:
    """The admin making a request, as :class:`gateway.admin.security.AdminGuard` found it."""

    user_name: str
    role: str
    via: Literal["session", "token"]
    session_id: str | None
    csrf_token: str | None
    token_id: str | None
    address: str
    read_only: bool = False
    scoped: bool = False
    """An API token limited to paths of the CEMM: the admin app refuses it."""
