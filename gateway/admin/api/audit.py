"""``/api/audit`` (a page of the newest matching entries) and ``/api/audit.csv`` (every
matching entry as a download, complete or not at all)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any

from fastapi import Depends, Query, Response
from fastapi.responses import StreamingResponse

from gateway.admin.actions import audit as actions
from gateway.admin.api.common import (
    ID_MAX,
    INVALID,
    INVALID_REQUEST,
    REFUSALS,
    CallerDep,
    ContextDep,
    json_error,
    resource_router,
)
from gateway.admin.models import AuditOut
from gateway.services import audit_export as export
from gateway.services.audit_export import AuditQuery

router = resource_router()

# Who did it or whom it was about: also "system:first-start", "cli:root", "-" and the like.
AuditUserQuery = Annotated[
    str | None, Query(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
]
EventQuery = Annotated[
    str | None, Query(min_length=1, max_length=64, pattern=r"^[a-z_]+(\.[a-z_]+)?$")
]


class CsvResponse(Response):
    media_type = "text/csv"


def _moment_query(description: str) -> Any:
    return Query(
        max_length=40,
        pattern=export.MOMENT_PATTERN,
        description=f"{description}: an ISO 8601 date or date-time, e.g. 2026-01-31T08:00; "
        "without an offset it is the gateway's local time",
    )


def audit_filter(
    user: AuditUserQuery = None,
    event: EventQuery = None,
    since: Annotated[str | None, _moment_query("from (inclusive)")] = None,
    until: Annotated[str | None, _moment_query("to (exclusive)")] = None,
) -> AuditQuery:
    return AuditQuery(
        user=user,
        event=event,
        since=export.moment(since, "since"),
        until=export.moment(until, "until"),
    )


AuditFilterDep = Annotated[AuditQuery, Depends(audit_filter)]


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
        400: json_error(INVALID[400]["description"]),
        401: json_error(REFUSALS[401]["description"]),
        403: json_error(REFUSALS[403]["description"]),
        422: json_error(INVALID_REQUEST[422]["description"], "ValidationErrorOut"),
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
    spool, size = await export.spooled(
        context.db, query, most=limit, directory=context.settings.data_dir
    )
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        export.read_out(spool),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Length": str(size),
            "Content-Disposition": f'attachment; filename="cemm-gateway-audit-{stamp}.csv"',
        },
    )
