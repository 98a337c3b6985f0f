"""What the admin app's routes (API and pages alike) take from the web app: its context,
the running WireGuard manager and the run-time settings."""

from __future__ import annotations

from fastapi import Request

from gateway.live_settings import LiveSettings
from gateway.web.context import WebContext
from gateway.wireguard.manager import WireguardManager


def web_context(request: Request) -> WebContext:
    context: WebContext = request.app.state.context
    return context


def wireguard_manager(request: Request) -> WireguardManager | None:
    """The running WireGuard manager; None when ``[wireguard] enabled = false``."""
    manager: WireguardManager | None = getattr(request.app.state, "wireguard", None)
    return manager


def live_settings(request: Request) -> LiveSettings | None:
    """The settings in force and their run-time changes; None outside a running gateway."""
    live: LiveSettings | None = getattr(request.app.state, "live", None)
    return live
