"""What every resource of the admin API shares: the dependencies (caller, context,
WireGuard manager), the path and query types, and the documented refusals."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from gateway.admin.api.errors import ApiRoute
from gateway.admin.caller import Caller
from gateway.admin.deps import web_context, wireguard_manager
from gateway.admin.models import (
    PEER_NAME_PATTERN,
    USER_NAME_PATTERN,
    ErrorOut,
    ValidationErrorOut,
)
from gateway.admin.security import current_caller
from gateway.web.context import WebContext
from gateway.wireguard.manager import WireguardManager

ID_MAX = 2**63 - 1  # SQLite's INTEGER range

Responses = dict[int | str, dict[str, Any]]

REFUSALS: Responses = {
    401: {"model": ErrorOut, "description": "Not logged in, or the login ended"},
    403: {"model": ErrorOut, "description": "Not an admin, no CSRF token, or a foreign Origin"},
}
NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "Not found"}}
INVALID: Responses = {
    400: {"model": ErrorOut, "description": "Refused by a rule; the detail says which"}
}
CONFLICT: Responses = {409: {"model": ErrorOut, "description": "Conflicts with the current state"}}
INVALID_REQUEST: Responses = {
    422: {
        "model": ValidationErrorOut,
        "description": "The request does not fit the schema; the detail names each field",
    }
}
WIREGUARD_OFF: Responses = {
    404: {"model": ErrorOut, "description": "No such peer, or WireGuard is off"}
}


def resource_router() -> APIRouter:
    """A router for one resource; :mod:`gateway.admin.api` mounts it under ``/api``."""
    return APIRouter(responses={**REFUSALS, **INVALID_REQUEST}, route_class=ApiRoute)


def json_error(description: str, model: str = "ErrorOut") -> dict[str, Any]:
    """A refusal of an operation whose own answer is not JSON (FastAPI would document its
    refusals with the operation's media type)."""
    schema = {"$ref": f"#/components/schemas/{model}"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


CallerDep = Annotated[Caller, Depends(current_caller)]
ContextDep = Annotated[WebContext, Depends(web_context)]
WireguardDep = Annotated[WireguardManager | None, Depends(wireguard_manager)]

UserPath = Annotated[str, Path(min_length=1, max_length=64, pattern=USER_NAME_PATTERN)]
IdText = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
NumericId = Annotated[int, Path(ge=1, le=ID_MAX)]
UserQuery = Annotated[str | None, Query(min_length=1, max_length=64, pattern=USER_NAME_PATTERN)]
PeerPath = Annotated[str, Path(min_length=1, max_length=64, pattern=PEER_NAME_PATTERN)]
