"""The audit log page: the newest 200 matching entries, a filter, and the CSV download
(``/api/audit.csv`` with the same filter)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from gateway.admin.actions import audit as actions
from gateway.admin.deps import web_context
from gateway.admin.rendering import render
from gateway.admin.security import current_caller
from gateway.services import audit_export
from gateway.services.audit_export import AuditQuery
from gateway.services.errors import ServiceError

router = APIRouter(include_in_schema=False)
FILTERS = ("user", "event", "since", "until")


@router.get("/audit")
async def audit_get(request: Request) -> Response:
    caller = current_caller(request)
    context = web_context(request)
    params = request.query_params
    chosen = {name: params.get(name, "").strip() for name in FILTERS}
    events = await actions.audit_events(context)
    error = None
    found: list[Any] = []
    more = False
    if chosen["event"] and chosen["event"] not in events:
        chosen["event"] = ""
    try:
        query = AuditQuery(
            user=chosen["user"][:100] or None,
            event=chosen["event"] or None,
            since=audit_export.moment(chosen["since"], "from"),
            until=audit_export.moment(chosen["until"], "to"),
            limit=200,
        )
        found, more = await actions.search_audit(context, query)
    except ServiceError as refusal:
        error = refusal.translated()
    export = {key: value for key, value in chosen.items() if value}
    values = {
        "entries": found,
        "more": more,
        "events": events,
        "chosen": chosen,
        "export_query": export,
        "filtered": bool(export),
        "error": error,
    }
    return render(request, caller, "audit.html", values, 400 if error else 200)
