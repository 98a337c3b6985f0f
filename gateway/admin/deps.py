"""What the admin app's routes (API and pages alike) take from the web app: its context
and the running WireGuard manager."""

from __future__ import annotations

from fastapi import Request

from gateway.web.context import WebContext
from gateway.wireguard.manager import WireguardManager


def web_context(request: Request) -> WebContext:
    context: WebContext = request.app.state.context
    return context


def wireguard_manager(request: Request) -> WireguardManager | None:
    """The running WireGuard manager; None when ``[wireguard] enabled = false``."""
    manager: WireguardManager | None = getattr(request.app.state, "wireguard", None)
    return manager
