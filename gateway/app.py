"""The running gateway: proxy, web app and background tasks in one asyncio loop.

This module is the composition root: it builds the parts and starts and stops them; what
each part does is in its own module.

Start-up order: data directory and database (:mod:`gateway.startup`: the first admin),
the policy snapshot, the WireGuard tunnel (its addresses get listeners), the proxy state
(:mod:`gateway.proxy.state`), the web app on an internal loopback port, the proxy
listeners (web -> CEMM:80, ws -> CEMM:8090, admin -> the web app), then the background
tasks (:mod:`gateway.tasks`: state watcher, session sweeper, usage flush, audit purge,
CEMM monitor, WireGuard check, automatic backups). A change another process commits is in
force within ``reload_interval``; a login, logout or revoke in the web app before it
answers (:mod:`gateway.logins`). From start to stop the gateway holds its data directory's
lock (:mod:`gateway.backup.lock`), so a restore refuses while it runs.

Stopping (SIGTERM or SIGINT) closes the listeners, then every open connection including
WebSockets, then the web app; it is bounded to two seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sqlite3
from collections.abc import Coroutine, Sequence
from typing import Any

import uvicorn

from addons.connection_guard import ConnectionGuard
from addons.connection_registry import ConnectionRegistry
from gateway import startup
from gateway.auth import passwords
from gateway.auth.bruteforce import BruteForcePolicy
from gateway.backup import lock as instance_lock
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.live_settings import LiveSettings
from gateway.logins import Logins
from gateway.notify.runtime import Notifications
from gateway.policy.access import AccessConfig
from gateway.policy.allowlist import CompiledAllowlist
from gateway.proxy.engine import ProxyEngine
from gateway.proxy.errorpages import ErrorPages
from gateway.proxy.state import Listener, ProxyState
from gateway.services import held, runtime_settings, sessions, users
from gateway.services.recorder import Recorder
from gateway.settings import (
    Settings,
    SettingsError,
    check_acme,
    check_oidc,
    check_tls,
    check_wireguard,
    require_upstream,
)
from gateway.status import GatewayStatus, StorageStatus, gather
from gateway.store import db
from gateway.store.worker import DbWorker
from gateway.switches import Switches
from gateway.system.heap import freeze_start_up
from gateway.system.limits import AcceptGuard, raise_open_file_limit
from gateway.tasks import acme_renewal, cemm_monitor, notifications, wireguard_check
from gateway.tasks.audit_purge import AuditPurge
from gateway.tasks.backup import AutomaticBackups
from gateway.tasks.session_sweeper import SessionSweeper
from gateway.tasks.state_watcher import StateWatcher
from gateway.tasks.usage_flush import UsageFlush
from gateway.upstream.monitor import UpstreamMonitor
from gateway.web import times
from gateway.web.app import SERVER_OPTIONS, create_web_app
from gateway.web.context import WebContext
from gateway.web.server import AdminServer
from gateway.wireguard.interface import WireguardError
from gateway.wireguard.manager import WireguardManager

logger = logging.getLogger("cemm_gateway")

WEB_APP_TASK = "admin app"


class Gateway:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        extra_addons: Sequence[Any] = (),
    ) -> None:
        require_upstream(settings)
        check_oidc(settings)
        check_tls(settings)
        check_acme(settings)
        check_wireguard(settings)
        self.settings = settings
        times.use_timezone(settings.ui.timezone)
        self.clock = clock
        self._extra_addons = list(extra_addons)
        self.engine: ProxyEngine | None = None
        self.state: ProxyState | None = None
        self.registry: ConnectionRegistry | None = None
        self.guard: ConnectionGuard | None = None
        self.recorder: Recorder | None = None
        self.upstream_monitor: UpstreamMonitor | None = None
        self.watcher: StateWatcher | None = None
        self.logins: Logins | None = None
        self._admin_server: AdminServer | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._workers: list[DbWorker] = []
        self._accept_guard: AcceptGuard | None = None
        self._wireguard: WireguardManager | None = None
        self._usage: UsageFlush | None = None
        self._oidc: Any = None
        self.notifications: Notifications | None = None
        self.live: LiveSettings | None = None
        self._instance_lock: instance_lock.InstanceLock | None = None
        self.backups: AutomaticBackups | None = None
        self.acme = startup.acme_manager(settings)
        self.started = asyncio.Event()
        self._stopping = False

    @property
    def conn(self) -> sqlite3.Connection | None:
        """The event loop's database connection (reads only once started)."""
        return self.watcher.conn if self.watcher is not None else None

    # -- start-up ---------------------------------------------------------------------
    async def start(self) -> None:
        settings = self.settings
        self._hold_data_dir()
        # Before any listener exists: every accept goes through it.
        self._accept_guard = AcceptGuard(asyncio.get_running_loop())
        self._accept_guard.install()
        conn = self._open_database()
        # Values changed in the admin app, where the file and the environment leave room.
        self.live = LiveSettings(settings, runtime_settings.stored(conn))
        settings = self.settings = self.live.current
        check_wireguard(settings)
        startup.create_initial_admin(conn, settings, self.clock)
        # In the background: a login before it is done computes the same under its lock.
        self._start_task(
            asyncio.to_thread(passwords.warm_up, users.password_hashes(conn)), "password warm-up"
        )
        self.watcher = StateWatcher(conn, settings, clock=self.clock, disk_full=db.read_only(conn))
        policy = self.watcher.policy_loader.load()
        admin_socket = startup.admin_socket()
        internal_port = admin_socket.getsockname()[1]
        listeners = startup.listeners(settings, internal_port)
        if settings.wireguard.enabled:
            # The tunnel must exist before listeners bind its address.
            self._wireguard = await self._start_wireguard(conn)
            listeners += startup.tunnel_listeners(listeners, self._wireguard, settings.listen.host)
        self.state = startup.proxy_state(settings, listeners, policy, self._access(), internal_port)
        self._build_parts(conn)
        # From here on the event loop's connection only reads; writes go to the recorder.
        db.set_busy_timeout(conn, db.SHORT_BUSY_TIMEOUT)
        self._start_web_app(admin_socket)
        await self._start_engine(listeners)
        self._start_tasks()
        self._log_start(listeners)
        self.started.set()

    def _hold_data_dir(self) -> None:
        """The data directory's lock, held until the gateway stops: a restore refuses while
        it is held (:mod:`gateway.backup.lock`)."""
        data_dir = self.settings.data_dir
        db.prepare_data_dir(data_dir)
        try:
            self._instance_lock = instance_lock.hold(data_dir)
        except instance_lock.DataDirInUse:
            raise SettingsError(
                f"another gateway, or a restore, is using the data directory {data_dir} "
                f"(it holds {data_dir / instance_lock.LOCK_FILE}); stop it first"
            ) from None

    def _open_database(self) -> sqlite3.Connection:
        conn = db.connect(self.settings.database_path)
        if db.read_only(conn):
            logger.warning(
                "%s: running read-only on the existing database (allowlist, sessions and "
                "API tokens are enforced; logins and changes are refused until there is room)",
                db.disk_full_message(self.settings.data_dir),
            )
        return conn

    async def _start_wireguard(self, conn: sqlite3.Connection) -> WireguardManager:
        listen = self.settings.listen
        manager = WireguardManager(
            self.settings,
            conn,
            gateway_ports=[listen.http_port, listen.ws_port, listen.admin_port],
            clock=self.clock,
        )
        try:
            await manager.start()
        except WireguardError as error:
            raise SettingsError(str(error)) from None
        return manager

    def _access(self) -> AccessConfig:
        assert self.watcher is not None
        return startup.access_config(self.settings, self.watcher.conn, self._wireguard, self.clock)

    def _worker(self, **options: Any) -> DbWorker:
        worker = DbWorker(self.settings.database_path, **options)
        self._workers.append(worker)
        return worker

    def _build_parts(self, conn: sqlite3.Connection) -> None:
        """The connection registry and guard, the recorder, the CEMM monitor, the logins."""
        settings, state, watcher = self.settings, self.state, self.watcher
        assert state is not None and watcher is not None
        self.registry = registry = ConnectionRegistry(state)
        self.guard = ConnectionGuard(state, registry)
        held.enable()
        background = self._worker(busy_timeout=db.SHORT_BUSY_TIMEOUT, name="gateway-recorder")
        self.recorder = Recorder(
            background, state, drain_hits=self.guard.drain_hits, clock=self.clock
        )
        self.upstream_monitor = UpstreamMonitor(
            settings.upstream, state, record_audit=self.recorder.record_audit, clock=self.clock
        )
        assert state.error_pages is not None
        state.error_pages.describe_upstream = self.upstream_monitor.describe
        idle = settings.auth.session_idle_timeout
        self.logins = Logins(
            state,
            registry,
            self._worker(busy_timeout=db.SHORT_BUSY_TIMEOUT, name="gateway-logins"),
            idle_timeout=idle,
            clock=self.clock,
        )
        # At start, on this connection: nothing is proxied before it is in force.
        self.logins.load(sessions.load_snapshot(conn, now=self.clock.now(), idle_timeout=idle))
        watcher.connect(
            state, registry, self.logins, access=self._access, wireguard=self._wireguard
        )
        self._usage = UsageFlush(self.recorder, disk_full=lambda: watcher.disk_full)

    def _start_web_app(self, admin_socket: socket.socket) -> None:
        settings, state = self.settings, self.state
        assert state is not None and self.logins is not None
        bruteforce = settings.auth.bruteforce
        self._oidc = startup.oidc_client(settings, self.clock)
        context = WebContext(
            settings=settings,
            db=self._worker(),
            state=state,
            logins=self.logins,
            status=self.status,
            bruteforce=BruteForcePolicy(
                window=bruteforce.window,
                free_attempts=bruteforce.free_attempts,
                max_delay=bruteforce.max_delay,
                ban_after=bruteforce.ban_after,
                ban_duration=bruteforce.ban_duration,
            ),
            never_ban=CompiledAllowlist.from_networks(bruteforce.never_ban),
            oidc=self._oidc,
        )
        web_app = create_web_app(context)
        web_app.state.wireguard = self._wireguard
        web_app.state.live = self.live
        Switches(self, web_app).install()
        config = uvicorn.Config(web_app, **SERVER_OPTIONS)
        self._admin_server = AdminServer(config)
        self._start_task(self._admin_server.serve(sockets=[admin_socket]), WEB_APP_TASK)

    async def _start_engine(self, listeners: list[Listener]) -> None:
        assert self.state is not None and self.registry is not None and self.guard is not None
        assert self.recorder is not None
        self.engine = ProxyEngine(
            modes=[listener.mode_spec for listener in listeners],
            listen_host=self.settings.listen.host,
            confdir=self.settings.data_dir / "mitmproxy",
            addons=startup.proxy_addons(
                self.settings,
                self.state,
                self.registry,
                self.guard,
                self.recorder,
                extra=self._extra_addons,
                acme=self.acme,
            ),
            error_pages=self.state.error_pages or ErrorPages(),
        )
        try:
            await self.engine.start()
        except Exception:
            await self.stop()
            raise

    def _start_tasks(self) -> None:
        """The background tasks (:mod:`gateway.tasks` lists them)."""
        state, registry, logins = self.state, self.registry, self.logins
        assert state is not None and registry is not None and logins is not None
        assert self.watcher is not None and self.recorder is not None
        assert self.upstream_monitor is not None and self._usage is not None
        settings, interval = self.settings, self.settings.reload_interval
        sweeper = SessionSweeper(state, registry, logins, clock=self.clock)
        self._start_task(self.watcher.run(), "state watcher")
        self._start_task(sweeper.run(interval), "session sweeper")
        self._start_task(self._usage.run(), "usage flush")
        purge = AuditPurge(self.recorder, self.settings.auth)
        self._start_task(purge.run(first_after=interval), "audit purge")
        self._start_task(cemm_monitor.run(self.upstream_monitor), "CEMM monitor")
        if self._wireguard is not None:
            self._start_task(wireguard_check.run(self._wireguard), "WireGuard check")
        self.notifications = notifications.start(
            settings,
            self.upstream_monitor,
            self._start_task,
            wireguard=self._wireguard,
            conn=self.watcher.conn,
        )
        self.backups = AutomaticBackups(self.settings, self.recorder.record_audit, clock=self.clock)
        self._start_task(self.backups.run(), "automatic backups")
        if self.acme is not None:
            self._start_task(
                acme_renewal.run(self.acme, self.recorder.record_audit), "ACME renewal"
            )

    def _start_task(self, job: Coroutine[Any, Any, Any], name: str) -> None:
        self._tasks.append(asyncio.create_task(job, name=name))

    def _log_start(self, listeners: list[Listener]) -> None:
        settings, state = self.settings, self.state
        assert state is not None and self.watcher is not None
        upstream = state.upstream
        for listener in listeners:
            target = (
                "admin app"
                if listener.name == "admin"
                else startup.hostport(*upstream.address_for(listener.name))
                if upstream.host
                else f"the CEMM with MAC {upstream.mac} (looking for it)"
            )
            logger.info(
                "listening on %s (%s) -> %s",
                startup.listen_address(listener, settings.listen.host),
                listener.name,
                target,
            )
        defaults = self.watcher.policy_loader.default_networks
        logger.info("allowlist default networks: %s", ", ".join(defaults))
        logger.info("admin networks: %s", ", ".join(settings.allowlist.admin_networks))
        if settings.allowlist.trusted_proxies:
            logger.info("trusted proxies: %s", ", ".join(settings.allowlist.trusted_proxies))

    # -- what it reports --------------------------------------------------------------
    def storage_status(self) -> StorageStatus:
        """What ``/healthz`` details, the dashboard and metrics say about the data disk."""
        watcher = self.watcher
        return StorageStatus.read(
            self.settings.data_dir,
            disk_full=watcher.disk_full if watcher is not None else False,
            read_only=watcher.read_only() if watcher is not None else False,
            failing=self.recorder.failing if self.recorder else {},
        )

    def status(self) -> GatewayStatus:
        """The gateway's status now (:mod:`gateway.status`); only once started."""
        state, registry, monitor = self.state, self.registry, self.upstream_monitor
        assert state is not None and registry is not None
        return gather(
            state,
            open_connections=len(registry.clients),
            open_websockets=registry.open_websockets,
            websocket_sessions=registry.websocket_sessions(),
            cemm_facts=monitor.facts() if monitor is not None else {},
            vpn=self._wireguard.report() if self._wireguard is not None else None,
            storage=self.storage_status(),
            notify=self.notifications.notifier.status() if self.notifications else None,
            backup=self.backups.status() if self.backups is not None else None,
            certificate=self.acme.status() if self.acme is not None else None,
        )

    # -- stopping ---------------------------------------------------------------------
    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        if self.engine is not None:
            await self.engine.stop()
        for task in self._tasks:
            if task.get_name() != WEB_APP_TASK:
                task.cancel()
        if self._wireguard is not None:
            with contextlib.suppress(Exception):
                await self._wireguard.stop()
        if self._admin_server is not None:
            self._admin_server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.gather(*self._tasks, return_exceptions=True), timeout=1.5
            )
        if self._usage is not None:
            with contextlib.suppress(Exception):
                await self._usage.flush_all(timeout=1.5)
        if self._oidc is not None:
            with contextlib.suppress(Exception):
                await self._oidc.aclose()
        await notifications.stop(self.notifications)
        self._close()

    def _close(self) -> None:
        held.enable(False)
        if held.pending():
            logger.warning(
                "%d revocation(s) held in memory could not be saved (the disk is full)",
                held.pending(),
            )
        for worker in self._workers:
            worker.close()
        if self.watcher is not None:
            self.watcher.close()
        if self._accept_guard is not None:
            self._accept_guard.uninstall()
        if self._instance_lock is not None:
            self._instance_lock.release()


async def serve(settings: Settings, *, ready_message: bool = True) -> None:
    """Run the gateway until SIGTERM or SIGINT."""
    open_files = raise_open_file_limit()
    logger.info(
        "open-file limit %d: room for about %d proxied connections", open_files, open_files // 2
    )
    gateway = Gateway(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await gateway.start()
    freeze_start_up()
    if ready_message:
        logger.info("cemm-gateway is ready")
    await stop.wait()
    logger.info("stopping")
    await gateway.stop()
