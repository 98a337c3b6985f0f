"""The audit log as the admin app searches it."""

from __future__ import annotations

from gateway.admin.models import AuditEntryOut
from gateway.admin.views import audit_out
from gateway.services import audit, audit_export
from gateway.services.audit_export import AuditQuery
from gateway.web.context import WebContext


async def search_audit(context: WebContext, query: AuditQuery) -> tuple[list[AuditEntryOut], bool]:
    """Matching entries, newest first, and whether there are more than ``limit``."""
    found, more = await context.db.run(audit_export.page, query)
    return [audit_out(entry) for entry in found], more


async def audit_events(context: WebContext) -> list[str]:
    events: list[str] = await context.db.run(audit.event_names)
    return events
