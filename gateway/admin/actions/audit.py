"""The audit log as the admin app searches it."""

from __future__ import annotations

from gateway.services import audit, audit_export
from gateway.services.audit_export import AuditQuery
from gateway.web.context import WebContext


async def search_audit(
    context: WebContext, query: AuditQuery
) -> tuple[list[audit.AuditEntry], bool]:
    """Matching entries, newest first, and whether there are more than ``limit``."""
    found: list[audit.AuditEntry]
    more: bool
    found, more = await context.db.run(audit_export.page, query)
    return found, more


async def audit_events(context: WebContext) -> list[str]:
    events: list[str] = await context.db.run(audit.event_names)
    return events
