"""The certificate renewal: with ``[acme] enabled``, order a certificate when the one in
place is due (the stand-in at first start, then at two thirds of each lifetime), retrying
with backoff. The rules are in :mod:`gateway.acme.manager`; this task runs them for the
gateway's lifetime; a failed order is audited through ``record_audit`` (and so
becomes the ``certificate.renewal_failed`` notification)."""

from __future__ import annotations

from gateway.acme.manager import AcmeManager, RecordAudit


async def run(manager: AcmeManager, record_audit: RecordAudit | None = None) -> None:
    if record_audit is not None:
        manager.record_audit = record_audit
    await manager.run()
