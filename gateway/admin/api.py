"""The admin JSON API under ``/api/``: every operation of the admin pages, for scripts.

Authentication and the CSRF rule are the guard's (:mod:`gateway.admin.security`): the
login session cookie plus ``X-CSRF-Token`` on every state change, or an admin's API token
(``Authorization: Bearer cgw_...``). The OpenAPI document at ``/openapi.json`` describes
every operation, its answers and its refusals (``{"error", "detail"}``); see
:func:`document_security` for how it states the credentials. A request that does not fit
the operation's schema is refused in the same shape (:class:`ApiRoute`, 422).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.dependencies.utils import get_flat_params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute

from gateway.admin import actions
from gateway.admin.dashboard import Dashboard, collect
from gateway.admin.models import (
    PEER_NAME_PATTERN,
    AllowlistAdd,
    AllowlistEntryOut,
    AllowlistOut,
    AuditOut,
    BanOut,
    ErrorOut,
    FieldErrorOut,
    MeOut,
    PasswordSet,
    PasswordSetOut,
    PeerAdd,
    PeerAdded,
    PeerChange,
    PeerConfigOut,
    PeerLinkOut,
    PeerOut,
    RevokedCount,
    SelfLockoutOut,
    SessionOut,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserAdd,
    UserAdded,
    UserChange,
    UserOut,
    ValidationErrorOut,
)
from gateway.admin.security import CSRF_HEADER, Caller, current_caller
from gateway.services import audit
from gateway.store.worker import DbWorker
from gateway.web.context import WebContext
from gateway.wireguard.manager import WireguardManager

ID_MAX = 2**63 - 1  # SQLite's INTEGER range


class CsvResponse(Response):
    media_type = "text/csv"


_refusals: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not logged in, or the login ended"},
    403: {"model": ErrorOut, "description": "Not an admin, no CSRF token, or a foreign Origin"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "Not found"}}
INVALID: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Refused by a rule; the detail says which"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "Conflicts with the current state"}
}


INVALID_REQUEST: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ValidationErrorOut,
        "description": "The request does not fit the schema; the detail names each field",
    }
}


def _field_error(error: Any) -> FieldErrorOut:
    """One of pydantic's errors as a location and a sentence (never the value sent)."""
    loc: Sequence[str | int] = error.get("loc") or ()
    if error.get("type") == "json_invalid":  # loc is ("body", character offset)
        reason = (error.get("ctx") or {}).get("error") or "not JSON"
        offset = f" at character {loc[1]}" if len(loc) > 1 else ""
        return FieldErrorOut(location="body", message=f"not valid JSON{offset}: {reason}")
    location = ""
    for part in loc:
        if isinstance(part, int):
            location += f"[{part}]"
        else:
            location += f".{part}" if location else str(part)
    message = str(error.get("msg") or "not valid").removeprefix("Value error, ")
    return FieldErrorOut(location=location or "request", message=message)


def validation_refusal(error: RequestValidationError) -> JSONResponse:
    """A request FastAPI could not validate, answered in the API's own error shape."""
    fields = [_field_error(each) for each in error.errors()]
    detail = "; ".join(f"{field.location}: {field.message}" for field in fields)
    body = ValidationErrorOut(
        error="invalid_request", detail=detail or "the request is not valid", errors=fields
    )
    return JSONResponse(body.model_dump(), status_code=422)


class ApiRoute(APIRoute):
    """A route of the admin API. A request that does not fit the operation's schema (a
    missing or extra field, a wrong type, a pattern, a bound) is refused with 422 in the
    API's own shape, :class:`ValidationErrorOut`, instead of FastAPI's ``{"detail": [...]}``;
    and only an operation that takes input documents that 422."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if self.body_field is None and not get_flat_params(self.dependant):
            self.responses.pop(422, None)
            self.response_fields.pop(422, None)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                return validation_refusal(error)

        return handle


def _json_error(description: str, model: str = "ErrorOut") -> dict[str, Any]:
    # For an operation whose own answer is not JSON (FastAPI would document its refusals
    # with the operation's media type).
    schema = {"$ref": f"#/components/schemas/{model}"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


router = APIRouter(
    prefix="/api",
    tags=["admin"],
    responses={**_refusals, **INVALID_REQUEST},
    route_class=ApiRoute,
)

CallerDep = Annotated[Caller, Depends(current_caller)]
UserPath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
]
IdText = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
UserQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"),
]
# Who did it or whom it was about: also "system:first-start", "cli:root", "-" and the like.
AuditUserQuery = Annotated[
    str | None, Query(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
]
EventQuery = Annotated[
    str | None, Query(min_length=1, max_length=64, pattern=r"^[a-z_]+(\.[a-z_]+)?$")
]


def web_context(request: Request) -> WebContext:
    context: WebContext = request.app.state.context
    return context


ContextDep = Annotated[WebContext, Depends(web_context)]


def wireguard_manager(request: Request) -> WireguardManager | None:
    """The running WireGuard manager; None when ``[wireguard] enabled = false``."""
    manager: WireguardManager | None = getattr(request.app.state, "wireguard", None)
    return manager


WireguardDep = Annotated[WireguardManager | None, Depends(wireguard_manager)]
PeerPath = Annotated[str, Path(min_length=1, max_length=64, pattern=PEER_NAME_PATTERN)]
WIREGUARD_OFF: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such peer, or WireGuard is off"}
}


# -- who am I / dashboard -------------------------------------------------------------------
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


# -- allowlist ------------------------------------------------------------------------------
@router.get("/allowlist", response_model=AllowlistOut, summary="Allowlist entries")
async def allowlist(caller: CallerDep, context: ContextDep) -> AllowlistOut:
    return await actions.allowlist_view(context, caller)


@router.post(
    "/allowlist",
    response_model=AllowlistEntryOut,
    status_code=201,
    summary="Add an entry (or change an existing network's label and expiry)",
    responses={
        **INVALID,
        409: {"model": SelfLockoutOut, "description": "Would cut off your own address"},
    },
)
async def allowlist_add(body: AllowlistAdd, caller: CallerDep, context: ContextDep) -> Any:
    entry, _ = await actions.save_allowlist_entry(
        context,
        caller,
        network=body.network,
        label=body.label,
        expires=body.expires,
        confirm_lockout=body.confirm_lockout,
    )
    return entry


@router.delete(
    "/allowlist/{entry_id}",
    status_code=204,
    response_class=Response,
    summary="Remove an entry",
    responses={
        **NOT_FOUND,
        409: {"model": SelfLockoutOut, "description": "Would cut off your own address"},
    },
)
async def allowlist_remove(
    entry_id: Annotated[int, Path(ge=1, le=ID_MAX)],
    caller: CallerDep,
    context: ContextDep,
    confirm_lockout: Annotated[bool, Query()] = False,
) -> Response:
    await actions.remove_allowlist_entry(context, caller, entry_id, confirm_lockout=confirm_lockout)
    return Response(status_code=204)


# -- users ----------------------------------------------------------------------------------
@router.get("/users", response_model=list[UserOut], summary="Users")
async def users_list(caller: CallerDep, context: ContextDep) -> Any:
    return await actions.list_users(context)


@router.post(
    "/users",
    response_model=UserAdded,
    status_code=201,
    summary="Add a user",
    responses={**INVALID, **CONFLICT},
)
async def users_add(body: UserAdd, caller: CallerDep, context: ContextDep) -> UserAdded:
    added = await actions.add_user(
        context, caller, name=body.name, role=body.role, password=body.password
    )
    return UserAdded(user=added.user, generated_password=added.generated_password)


@router.get("/users/{name}", response_model=UserOut, summary="One user", responses=NOT_FOUND)
async def users_get(name: UserPath, caller: CallerDep, context: ContextDep) -> Any:
    return await actions.get_user(context, name)


@router.patch(
    "/users/{name}",
    response_model=UserOut,
    summary="Change a user's role or disable/enable it",
    responses={**NOT_FOUND, **INVALID, **CONFLICT},
)
async def users_change(
    name: UserPath, body: UserChange, caller: CallerDep, context: ContextDep
) -> Any:
    return await actions.change_user(context, caller, name, role=body.role, disabled=body.disabled)


@router.delete(
    "/users/{name}",
    status_code=204,
    response_class=Response,
    summary="Remove a user (with their sessions and tokens)",
    responses={**NOT_FOUND, **CONFLICT},
)
async def users_remove(name: UserPath, caller: CallerDep, context: ContextDep) -> Response:
    await actions.remove_user(context, caller, name)
    return Response(status_code=204)


@router.post(
    "/users/{name}/password",
    response_model=PasswordSetOut,
    summary="Set a new password (or generate one); ends the user's other sessions",
    responses={**NOT_FOUND, **INVALID},
)
async def users_password(
    name: UserPath, body: PasswordSet, caller: CallerDep, context: ContextDep
) -> PasswordSetOut:
    generated = await actions.set_password(context, caller, name, password=body.password)
    return PasswordSetOut(generated_password=generated)


@router.post(
    "/users/{name}/reset-second-factor",
    status_code=204,
    response_class=Response,
    summary="Turn the user's two-step verification off (they can set it up again)",
    responses=NOT_FOUND,
)
async def users_reset_second_factor(
    name: UserPath, caller: CallerDep, context: ContextDep
) -> Response:
    await actions.reset_second_factor(context, caller, name)
    return Response(status_code=204)


@router.delete(
    "/users/{name}/sessions",
    response_model=RevokedCount,
    summary="End every session of a user",
    responses=NOT_FOUND,
)
async def users_revoke_sessions(
    name: UserPath, caller: CallerDep, context: ContextDep
) -> RevokedCount:
    return RevokedCount(ended=await actions.revoke_user_sessions(context, caller, name))


# -- API tokens -----------------------------------------------------------------------------
@router.get("/tokens", response_model=list[TokenOut], summary="API tokens")
async def tokens_list(caller: CallerDep, context: ContextDep, user: UserQuery = None) -> Any:
    return await actions.list_tokens(context, user=user)


@router.post(
    "/tokens",
    response_model=TokenCreated,
    status_code=201,
    summary="Create an API token for a user (the token is answered once)",
    responses={**NOT_FOUND, **INVALID},
)
async def tokens_create(body: TokenCreate, caller: CallerDep, context: ContextDep) -> TokenCreated:
    token, record = await actions.create_token(
        context,
        caller,
        user=body.user,
        name=body.name,
        read_only=body.read_only,
        expires=body.expires,
    )
    return TokenCreated(token=token, record=record)


@router.delete(
    "/tokens/{token_id}",
    status_code=204,
    response_class=Response,
    summary="Revoke an API token",
    responses={**NOT_FOUND, **CONFLICT},
)
async def tokens_revoke(token_id: IdText, caller: CallerDep, context: ContextDep) -> Response:
    await actions.revoke_token(context, caller, token_id)
    return Response(status_code=204)


# -- sessions -------------------------------------------------------------------------------
@router.get(
    "/sessions", response_model=list[SessionOut], summary="Active sessions", responses=NOT_FOUND
)
async def sessions_list(caller: CallerDep, context: ContextDep, user: UserQuery = None) -> Any:
    return await actions.list_sessions(context, caller, user=user)


@router.delete(
    "/sessions/{session_id}",
    status_code=204,
    response_class=Response,
    summary="End a session (its WebSockets close at once)",
    responses=NOT_FOUND,
)
async def sessions_revoke(session_id: IdText, caller: CallerDep, context: ContextDep) -> Response:
    await actions.revoke_session(context, caller, session_id)
    return Response(status_code=204)


# -- bans -----------------------------------------------------------------------------------
@router.get("/bans", response_model=list[BanOut], summary="Active bans")
async def bans_list(caller: CallerDep, context: ContextDep) -> Any:
    return await actions.list_bans(context)


@router.delete(
    "/bans/{ban_id}",
    status_code=204,
    response_class=Response,
    summary="Lift a ban",
    responses=NOT_FOUND,
)
async def bans_lift(
    ban_id: Annotated[int, Path(ge=1, le=ID_MAX)], caller: CallerDep, context: ContextDep
) -> Response:
    await actions.lift_ban(context, caller, ban_id)
    return Response(status_code=204)


# -- WireGuard peers --------------------------------------------------------------------
@router.get(
    "/peers",
    response_model=list[PeerOut],
    summary="WireGuard peers, with their latest handshake and transfer",
    responses=WIREGUARD_OFF,
)
async def peers_list(caller: CallerDep, context: ContextDep, manager: WireguardDep) -> Any:
    return await actions.list_peers(manager, context)


@router.post(
    "/peers",
    response_model=PeerAdded,
    status_code=201,
    summary="Add a peer (a generated key pair's configuration is answered once)",
    responses={**WIREGUARD_OFF, **INVALID, **CONFLICT},
)
async def peers_add(
    body: PeerAdd, caller: CallerDep, context: ContextDep, manager: WireguardDep
) -> PeerAdded:
    return await actions.add_peer(
        manager,
        context,
        caller,
        name=body.name,
        user=body.user,
        public_key=body.public_key,
        trusted=body.trusted,
        expires=body.expires,
    )


@router.patch(
    "/peers/{name}",
    response_model=PeerOut,
    summary="Enable or disable a peer, or mark it a trusted device",
    responses={**WIREGUARD_OFF, **INVALID},
)
async def peers_change(
    name: PeerPath, body: PeerChange, caller: CallerDep, context: ContextDep, manager: WireguardDep
) -> PeerOut:
    return await actions.change_peer(
        manager, context, caller, name, enabled=body.enabled, trusted=body.trusted
    )


@router.post(
    "/peers/{name}/rotate",
    response_model=PeerConfigOut,
    summary="New keys for a peer: the old configuration stops working; the new one is answered",
    responses={**WIREGUARD_OFF, **INVALID},
)
async def peers_rotate(
    name: PeerPath, caller: CallerDep, context: ContextDep, manager: WireguardDep
) -> PeerConfigOut:
    return await actions.rotate_peer(manager, context, caller, name)


@router.delete(
    "/peers/{name}",
    status_code=204,
    response_class=Response,
    summary="Remove a peer",
    responses=WIREGUARD_OFF,
)
async def peers_remove(
    name: PeerPath, caller: CallerDep, context: ContextDep, manager: WireguardDep
) -> Response:
    await actions.remove_peer(manager, context, caller, name)
    return Response(status_code=204)


@router.post(
    "/peers/{name}/link",
    response_model=PeerLinkOut,
    status_code=201,
    summary="A one-time link to the peer's configuration (web port, no login, 15 minutes)",
    responses={
        **WIREGUARD_OFF,
        409: {"model": ErrorOut, "description": "The configuration is no longer available"},
    },
)
async def peers_link(
    name: PeerPath,
    request: Request,
    caller: CallerDep,
    context: ContextDep,
    manager: WireguardDep,
) -> PeerLinkOut:
    host = request.headers.get("x-forwarded-host") or request.headers.get("host")
    return await actions.create_peer_link(manager, context, caller, name, host=host)


# -- audit ----------------------------------------------------------------------------------
def _moment_query(description: str) -> Any:
    return Query(
        max_length=40,
        pattern=actions.MOMENT_PATTERN,
        description=f"{description}: an ISO 8601 date or date-time, e.g. 2026-01-31T08:00; "
        "without an offset it is the gateway's local time",
    )


def audit_filter(
    user: AuditUserQuery = None,
    event: EventQuery = None,
    since: Annotated[str | None, _moment_query("from (inclusive)")] = None,
    until: Annotated[str | None, _moment_query("to (exclusive)")] = None,
) -> actions.AuditFilter:
    return actions.AuditFilter(
        user=user,
        event=event,
        since=actions.parse_moment(since, "since"),
        until=actions.parse_moment(until, "until"),
    )


AuditFilterDep = Annotated[actions.AuditFilter, Depends(audit_filter)]


@router.get(
    "/audit",
    response_model=AuditOut,
    summary="Audit log entries, newest first (naive times are the gateway's local time)",
    responses=INVALID,
)
async def audit_list(
    query: AuditFilterDep,
    caller: CallerDep,
    context: ContextDep,
    limit: Annotated[int, Query(ge=1, le=10000, description="at most this many, the newest")] = 200,
) -> AuditOut:
    query = dataclasses.replace(query, limit=limit)
    found, more = await actions.search_audit(context, query)
    return AuditOut(entries=found, limit=query.limit, more=more)


# Entries read from the database at a time for the CSV export.
EXPORT_BATCH = 1000
# Bytes of an export held in memory; a larger one goes to a temporary file in the data
# directory (unlinked at once: nothing is left behind).
EXPORT_IN_MEMORY = 4 * 1024 * 1024
EXPORT_READ_SIZE = 64 * 1024


async def audit_csv_chunks(
    db: DbWorker,
    *,
    user: str | None,
    event: str | None,
    since: float | None,
    until: float | None,
    most: int | None = None,
    batch: int = EXPORT_BATCH,
) -> AsyncIterator[str]:
    """The CSV export, a header and then up to ``batch`` entries at a time, newest first:
    every entry that matches (or the newest ``most``), in memory of one batch whatever
    the log's size, the database free for other requests between batches.

    Each batch is the entries before the previous batch's oldest time (``until`` is
    exclusive). Entries at the very same time cannot be split that way, so those at a
    full batch's oldest time are read whole, by themselves, before moving on.
    """
    search = functools.partial(audit.search, user=user, event=event, since=since)
    header = audit.as_csv([])
    yield header
    left = most
    while left is None or left > 0:
        found = await db.run(search, until=until, limit=batch)
        full = len(found) == batch
        if full:
            oldest = found[-1].at
            at_oldest = await db.run(
                search, since=oldest, until=math.nextafter(oldest, math.inf), limit=ID_MAX
            )
            found = [entry for entry in found if entry.at > oldest] + at_oldest
            until = oldest
        if left is not None:
            found = found[:left]
            left -= len(found)
        if found:
            yield audit.as_csv(found)[len(header) :]
        if not full:
            return


async def _read_out(spool: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while block := spool.read(EXPORT_READ_SIZE):
            yield block
    finally:
        spool.close()


@router.get(
    "/audit.csv",
    response_class=CsvResponse,
    summary="Every matching entry as a CSV download, newest first",
    description="The same filter as GET /api/audit, without its cap: the file holds every "
    "entry that matches, unless a limit is given. It is complete or not sent at all: it is "
    "written out before the answer starts (a failure is an error status, never a shorter "
    "file), and Content-Length gives its size.",
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        400: _json_error(INVALID[400]["description"]),
        401: _json_error(_refusals[401]["description"]),
        403: _json_error(_refusals[403]["description"]),
        422: _json_error(INVALID_REQUEST[422]["description"], "ValidationErrorOut"),
    },
)
async def audit_export(
    query: AuditFilterDep,
    caller: CallerDep,
    context: ContextDep,
    limit: Annotated[
        int | None,
        Query(ge=1, le=ID_MAX, description="at most this many, the newest; default: all"),
    ] = None,
) -> Response:
    # Not streamed from the database straight to the client: once the answer has started,
    # a failure could only end it early, and it would look like a complete, shorter file.
    chunks = audit_csv_chunks(
        context.db,
        user=query.user or None,
        event=query.event or None,
        since=actions.timestamp(query.since),
        until=actions.timestamp(query.until),
        most=limit,
        batch=EXPORT_BATCH,
    )
    spool = tempfile.SpooledTemporaryFile(  # closed by _read_out, or below
        max_size=EXPORT_IN_MEMORY, mode="w+b", dir=str(context.settings.data_dir)
    )
    try:
        async for chunk in chunks:
            spool.write(chunk.encode())
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        _read_out(spool),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Length": str(size),
            "Content-Disposition": f'attachment; filename="cemm-gateway-audit-{stamp}.csv"',
        },
    )


# -- the OpenAPI document's credentials -------------------------------------------------------
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
