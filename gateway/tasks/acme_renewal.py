"""The certificate renewal: with ``[acme] enabled``, order a certificate when the one in
place is due (the stand-in at first start, then at two thirds of each lifetime), retrying
with backoff. The rules are in :mod:`gateway.acme.manager`; this task runs them for the
gateway's lifetime."""

from __future__ import annotations

from gateway.acme.manager import AcmeManager


async def run(manager: AcmeManager) -> None:
    await manager.run()
