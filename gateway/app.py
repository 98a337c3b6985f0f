"""The running gateway: proxy, admin app and background work in one asyncio loop.

Start-up order: data directory and database, the policy snapshot, the admin app on an
internal loopback port, then the proxy listeners (web -> CEMM:80, ws -> CEMM:8090,
admin -> the admin app). A background task polls the database for changes committed by
other processes (the CLI) and for expiring allowlist entries, swaps in a new policy
snapshot and closes the connections it no longer admits - within ``reload_interval``.

Stopping (SIGTERM or SIGINT) closes the listeners, then every open connection including
WebSockets, then the admin app; it is bounded to two seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from typing import Any

import uvicorn

from addons.client_address import ClientAddress
from addons.connection_guard import ConnectionGuard
from addons.connection_registry import ConnectionRegistry
from addons.forwarding import Forwarding
from addons.request_limits import RequestLimits
from addons.upstream import Upstream
from gateway.admin.app import create_admin_app
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.proxy import errorpages
from gateway.proxy.engine import ProxyEngine
from gateway.proxy.state import Limits, Listener, ProxyState, UpstreamTarget
from gateway.services import allowlist as allowlist_service
from gateway.services.policy import PolicyLoader
from gateway.settings import Settings, require_upstream
from gateway.store import db

logger = logging.getLogger("cemm_gateway")

HITS_FLUSH_INTERVAL = 5.0


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _AdminServer(uvicorn.Server):
    """uvicorn without its own signal handling: the gateway owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Gateway:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        extra_addons: Sequence[Any] = (),
    ) -> None:
        require_upstream(settings)
        self.settings = settings
        self.clock = clock
        self._extra_addons = list(extra_addons)
        self.conn: sqlite3.Connection | None = None
        self.engine: ProxyEngine | None = None
        self.state: ProxyState | None = None
        self.registry: ConnectionRegistry | None = None
        self.guard: ConnectionGuard | None = None
        self._admin_server: _AdminServer | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.started = asyncio.Event()
        self._stopping = False

    # -- start-up ---------------------------------------------------------------------
    async def start(self) -> None:
        settings = self.settings
        self.conn = db.connect(settings.database_path)
        self.policy_loader = PolicyLoader(self.conn, settings, self.clock)
        policy = self.policy_loader.load()

        admin_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        admin_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        admin_socket.bind(("127.0.0.1", 0))
        internal_port = admin_socket.getsockname()[1]

        upstream = settings.upstream
        listen = settings.listen
        listeners = [
            Listener(
                "web",
                listen.http_port,
                f"reverse:http://{_hostport(upstream.host, upstream.http_port)}@{listen.http_port}",
            ),
            Listener(
                "admin",
                listen.admin_port,
                f"reverse:http://127.0.0.1:{internal_port}@{listen.admin_port}",
            ),
        ]
        if listen.ws_port:
            listeners.insert(
                1,
                Listener(
                    "ws",
                    listen.ws_port,
                    f"reverse:http://{_hostport(upstream.host, upstream.ws_port)}@{listen.ws_port}",
                ),
            )
        self.state = state = ProxyState(
            listeners={listener.mode_spec: listener for listener in listeners},
            policy=policy,
            upstream=UpstreamTarget(
                host=upstream.host,
                http_port=upstream.http_port,
                ws_port=upstream.ws_port,
                connect_timeout=upstream.connect_timeout,
                admin_port=internal_port,
            ),
            limits=Limits(
                max_header_bytes=settings.limits.max_header_bytes,
                max_request_body_bytes=settings.limits.max_request_body_bytes,
            ),
        )
        errorpages.upstream_describer = state.status.describe

        admin_app = create_admin_app(internal_secret=state.internal_secret, status=self.status)
        config = uvicorn.Config(
            admin_app, log_config=None, access_log=False, lifespan="off", server_header=False
        )
        self._admin_server = _AdminServer(config)
        self._tasks.append(
            asyncio.create_task(self._admin_server.serve(sockets=[admin_socket]), name="admin app")
        )

        self.registry = ConnectionRegistry(state)
        self.guard = ConnectionGuard(state, self.registry)
        addons: list[Any] = [
            self.registry,
            self.guard,
            RequestLimits(state),
            ClientAddress(state, self.registry),
            *self._extra_addons,
            Forwarding(state),
            Upstream(state),
        ]
        self.engine = ProxyEngine(
            modes=[listener.mode_spec for listener in listeners],
            listen_host=listen.host,
            confdir=settings.data_dir / "mitmproxy",
            addons=addons,
        )
        try:
            await self.engine.start()
        except Exception:
            await self.stop()
            raise
        self._tasks.append(asyncio.create_task(self._watch_policy(), name="policy reload"))
        self._log_start(listeners)
        self.started.set()

    def _log_start(self, listeners: list[Listener]) -> None:
        settings = self.settings
        host = settings.listen.host or "*"
        assert self.state is not None
        for listener in listeners:
            target = (
                "admin app"
                if listener.name == "admin"
                else _hostport(*self.state.upstream.address_for(listener.name))
            )
            logger.info("listening on %s:%d (%s) -> %s", host, listener.port, listener.name, target)
        logger.info(
            "allowlist default networks: %s", ", ".join(self.policy_loader.default_networks)
        )
        logger.info("admin networks: %s", ", ".join(settings.allowlist.admin_networks))
        if settings.allowlist.trusted_proxies:
            logger.info("trusted proxies: %s", ", ".join(settings.allowlist.trusted_proxies))

    # -- background work --------------------------------------------------------------
    async def _watch_policy(self) -> None:
        assert self.state is not None and self.registry is not None and self.guard is not None
        interval = self.settings.reload_interval
        last_flush = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            try:
                if self.policy_loader.due():
                    policy = self.policy_loader.load()
                    self.state.policy = policy
                    closed = self.registry.enforce(policy)
                    logger.info(
                        "policy reloaded (generation %d)%s",
                        policy.generation,
                        f"; closed {closed} connection(s)" if closed else "",
                    )
                if time.monotonic() - last_flush >= HITS_FLUSH_INTERVAL:
                    last_flush = time.monotonic()
                    self._flush_hits()
            except Exception:
                # Keep the last good policy in force; a broken reload must not open anything.
                logger.exception("reloading the policy failed; the previous policy stays")

    def _flush_hits(self) -> None:
        assert self.guard is not None and self.conn is not None
        hits = self.guard.drain_hits()
        if hits:
            try:
                allowlist_service.add_hits(self.conn, hits)
            except sqlite3.Error as error:
                logger.warning("could not record allowlist hit counts: %s", error)

    def status(self) -> dict[str, Any]:
        state = self.state
        if state is None:
            return {}
        return {
            "open_connections": len(self.registry.clients) if self.registry else 0,
            "open_websockets": self.registry.open_websockets if self.registry else 0,
            "cemm": {
                str(port): {"last_ok": status.last_ok, "failing_since": status.failing_since}
                for port, status in state.status.ports.items()
            },
            "denials": dict(state.denials),
        }

    # -- stopping ---------------------------------------------------------------------
    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        if self.engine is not None:
            await self.engine.stop()
        for task in self._tasks:
            if task.get_name() != "admin app":
                task.cancel()
        if self._admin_server is not None:
            self._admin_server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.gather(*self._tasks, return_exceptions=True), timeout=1.5
            )
        if self.guard is not None and self.conn is not None:
            with contextlib.suppress(Exception):
                self._flush_hits()
        if self.conn is not None:
            self.conn.close()
            self.conn = None


async def serve(settings: Settings, *, ready_message: bool = True) -> None:
    """Run the gateway until SIGTERM or SIGINT."""
    gateway = Gateway(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await gateway.start()
    if ready_message:
        logger.info("cemm-gateway is ready")
    await stop.wait()
    logger.info("stopping")
    await gateway.stop()
