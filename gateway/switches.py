"""What a run-time settings change does to the running gateway (:mod:`gateway.live_settings`).

- **WireGuard** (``[wireguard] enabled``, ``endpoint``): the old interface, if any, is
  closed and its check stopped; when on, a new :class:`WireguardManager` brings up the
  interface with its firewall rule and the peers from the database, then the admin app, the
  state watcher and the access rules (trusted peers, the tunnel's own address) use it, and
  its check (and, with notifications on, the handshake watch) runs. The tunnel's addresses
  need listeners only when ``[listen] host`` does not already cover them (the default,
  every address, does); those are added to the proxy. An interface that cannot be made
  refuses the change with the reason (:class:`~gateway.services.errors.Invalid`) and the
  gateway stays as it was.
- **Notifications** (``[notify] urls``, ``events``, ``cemm_down_after``): the running
  delivery and its watches stop and start again with the new values (no second "gateway
  started" message); with no receiver left nothing runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Coroutine
from typing import Any, Protocol

from fastapi import FastAPI

from addons.connection_registry import ConnectionRegistry
from gateway import startup
from gateway.live_settings import LiveSettings
from gateway.logins import Logins
from gateway.notify.runtime import Notifications
from gateway.policy.access import AccessConfig
from gateway.proxy.engine import EngineError, ProxyEngine
from gateway.proxy.state import ProxyState
from gateway.services.errors import Invalid
from gateway.settings import Settings, SettingsError
from gateway.tasks import notifications, wireguard_check
from gateway.tasks.notify_watches import VpnWatch
from gateway.tasks.state_watcher import StateWatcher
from gateway.upstream.monitor import UpstreamMonitor
from gateway.wireguard.manager import WireguardManager

logger = logging.getLogger("cemm_gateway")


class Gateway(Protocol):
    """What the switches change of the running gateway (:class:`gateway.app.Gateway`)."""

    settings: Settings
    live: LiveSettings | None
    state: ProxyState | None
    registry: ConnectionRegistry | None
    logins: Logins | None
    watcher: StateWatcher | None
    engine: ProxyEngine | None
    upstream_monitor: UpstreamMonitor | None
    notifications: Notifications | None
    _wireguard: WireguardManager | None
    _tasks: list[asyncio.Task[Any]]

    def _start_task(self, job: Coroutine[Any, Any, Any], name: str) -> None: ...

    async def _start_wireguard(self, conn: sqlite3.Connection) -> WireguardManager: ...

    def _access(self) -> AccessConfig: ...


WIREGUARD_CHECK = "WireGuard check"
VPN_WATCH = "VPN handshake watch"
NOTIFY_TASKS = ("CEMM outage watch", VPN_WATCH, "certificate expiry watch")


async def _cancel(gateway: Gateway, names: tuple[str, ...]) -> None:
    found = [task for task in gateway._tasks if task.get_name() in names and not task.done()]
    for task in found:
        task.cancel()
    with contextlib.suppress(Exception):
        await asyncio.gather(*found, return_exceptions=True)
    gateway._tasks = [task for task in gateway._tasks if task not in found]


class Switches:
    """The hooks of one running gateway; :meth:`install` registers them."""

    def __init__(self, gateway: Gateway, web_app: FastAPI) -> None:
        self.gateway = gateway
        self.web_app = web_app

    def install(self) -> None:
        live = self.gateway.live
        assert live is not None
        live.on_change(self.wireguard)
        live.on_change(self.notify)

    # -- WireGuard --------------------------------------------------------------------
    async def wireguard(self, before: Settings, after: Settings) -> None:
        if before.wireguard == after.wireguard:
            return
        gateway = self.gateway
        if gateway._wireguard is not None:
            await _cancel(gateway, (WIREGUARD_CHECK, VPN_WATCH))
            with contextlib.suppress(Exception):
                await gateway._wireguard.stop()
            self._attach(None)
            logger.info("WireGuard interface %s is off", before.wireguard.interface)
        gateway.settings = after
        if not after.wireguard.enabled:
            return
        try:
            await self._turn_on(after)
        except BaseException:
            gateway.settings = before
            if before.wireguard.enabled:
                # Back to the interface as it was (best effort: it came up before).
                with contextlib.suppress(Exception):
                    await self._turn_on(before)
            raise

    async def _turn_on(self, settings: Settings) -> None:
        """Bring up WireGuard as ``settings`` say and put it to use; on failure nothing of
        it is left."""
        gateway = self.gateway
        assert gateway.watcher is not None
        gateway.settings = settings
        try:
            manager = await gateway._start_wireguard(gateway.watcher.conn)
        except SettingsError as error:
            raise Invalid(str(error), field="enabled") from None
        try:
            self._attach(manager)
            await self._listen_on_tunnel(manager)
        except BaseException:
            with contextlib.suppress(Exception):
                await manager.stop()
            self._attach(None)
            raise
        gateway._start_task(wireguard_check.run(manager), WIREGUARD_CHECK)
        if gateway.notifications is not None:
            notify = gateway.notifications.notifier.notify
            gateway._start_task(VpnWatch(manager, gateway.watcher.conn, notify).run(), VPN_WATCH)
        wireguard = settings.wireguard
        logger.info(
            "WireGuard interface %s is on (endpoint %s)", wireguard.interface, wireguard.endpoint
        )

    def _attach(self, manager: WireguardManager | None) -> None:
        """Every part that reads the manager reads this one (None: WireGuard off)."""
        gateway = self.gateway
        state, registry, logins, watcher = (
            gateway.state,
            gateway.registry,
            gateway.logins,
            gateway.watcher,
        )
        assert state is not None and registry is not None and logins is not None
        assert watcher is not None
        gateway._wireguard = manager
        self.web_app.state.wireguard = manager
        watcher.connect(state, registry, logins, access=gateway._access, wireguard=manager)
        state.set_access(gateway._access())

    async def _listen_on_tunnel(self, manager: WireguardManager) -> None:
        """Listeners on the tunnel's addresses that ``[listen] host`` does not cover."""
        gateway = self.gateway
        state, engine = gateway.state, gateway.engine
        assert state is not None and engine is not None
        # The listeners on [listen] host: their mode spec ends in a port alone.
        own = [
            listener
            for listener in state.listeners.values()
            if listener.mode_spec.rpartition("@")[2].isdigit()
        ]
        added = [
            listener
            for listener in startup.tunnel_listeners(own, manager, gateway.settings.listen.host)
            if listener.mode_spec not in state.listeners
        ]
        if added:
            try:
                await engine.add_modes([listener.mode_spec for listener in added])
            except EngineError as error:
                raise Invalid(str(error), field="enabled") from None
            state.add_listeners(added)

    # -- notifications ----------------------------------------------------------------
    async def notify(self, before: Settings, after: Settings) -> None:
        if before.notify == after.notify:
            return
        gateway = self.gateway
        await _cancel(gateway, NOTIFY_TASKS)
        await notifications.stop(gateway.notifications)
        gateway.notifications = None
        try:
            self._start_notifications(after)
        except SettingsError as error:
            with contextlib.suppress(SettingsError):
                self._start_notifications(before)
            raise Invalid(str(error), field="urls") from None

    def _start_notifications(self, settings: Settings) -> None:
        gateway = self.gateway
        assert gateway.watcher is not None
        gateway.notifications = notifications.start(
            settings,
            gateway.upstream_monitor,
            self._start_task,
            wireguard=gateway._wireguard,
            conn=gateway.watcher.conn,
            announce=False,
        )
        gateway.settings = settings

    def _start_task(self, job: Coroutine[Any, Any, Any], name: str) -> None:
        self.gateway._start_task(job, name)
