"""Notifications for the gateway's lifetime: delivery and the audit log watch
(:mod:`gateway.notify.runtime`), the CEMM outage watch (:mod:`gateway.tasks.cemm_outage`),
the VPN handshake and certificate expiry watches (:mod:`gateway.tasks.notify_watches`),
and the ``gateway.start`` notice once everything listens.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from gateway.acme.storage import AcmeStorage
from gateway.auth.bruteforce import BruteForcePolicy
from gateway.notify import runtime
from gateway.notify.delivery import Send
from gateway.notify.message import Notice
from gateway.settings import Settings
from gateway.tasks.cemm_outage import OutageWatch
from gateway.tasks.notify_watches import CertificateWatch, VpnWatch
from gateway.tls.certificates import self_signed_paths
from gateway.upstream.monitor import UpstreamMonitor
from gateway.version import version
from gateway.wireguard.manager import WireguardManager

StartTask = Callable[[Coroutine[Any, Any, Any], str], None]


def brute_force_policy(settings: Settings) -> BruteForcePolicy:
    found = settings.auth.bruteforce
    return BruteForcePolicy(
        window=found.window,
        free_attempts=found.free_attempts,
        max_delay=found.max_delay,
        ban_after=found.ban_after,
        ban_duration=found.ban_duration,
    )


def certificate_path(settings: Settings) -> Path | None:
    """The certificate the listeners serve, or None without TLS."""
    if not settings.tls.enabled:
        return None
    if settings.acme.enabled:
        return AcmeStorage(settings.data_dir).cert
    return Path(settings.tls.cert) if settings.tls.cert else self_signed_paths(settings.data_dir)[0]


def start(
    settings: Settings,
    monitor: UpstreamMonitor | None,
    start_task: StartTask,
    *,
    wireguard: WireguardManager | None = None,
    conn: sqlite3.Connection | None = None,
    send: Send | None = None,
    announce: bool = True,
) -> runtime.Notifications | None:
    """Start notifications if ``[notify]`` names a receiver; None otherwise. ``announce``:
    send ``gateway.start`` (not when started again after a change in the admin app)."""
    running = runtime.start(settings, brute_force_policy(settings), send=send)
    if running is None:
        return None
    notify = running.notifier.notify
    if monitor is not None:
        watch = OutageWatch(monitor, notify, down_after=settings.notify.cemm_down_after)
        start_task(watch.run(), "CEMM outage watch")
    if wireguard is not None and conn is not None:
        start_task(VpnWatch(wireguard, conn, notify).run(), "VPN handshake watch")
    cert = certificate_path(settings)
    if cert is not None:
        start_task(CertificateWatch(cert, notify).run(), "certificate expiry watch")
    if announce:
        notify(Notice("gateway.start", time.time(), "system", detail={"version": version()}))
    return running


async def stop(running: runtime.Notifications | None) -> None:
    if running is not None:
        await asyncio.to_thread(running.stop)
