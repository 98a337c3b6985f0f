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
import functools
import logging
import signal
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import uvicorn

from addons.authentication import Authentication
from addons.client_address import ClientAddress
from addons.connection_guard import ConnectionGuard
from addons.connection_registry import ConnectionRegistry
from addons.forwarding import Forwarding
from addons.https_only import HttpsOnly
from addons.page_fixup import PageFixup
from addons.request_limits import RequestLimits
from addons.request_log import RequestLog
from addons.request_metrics import RequestMetrics
from addons.tls_termination import TlsTermination
from addons.upgrades import Upgrades
from addons.upstream import Upstream
from addons.upstream_identity import UpstreamIdentity
from addons.websocket_messages import ReadOnlyWebSockets
from gateway.auth import passwords
from gateway.auth.bruteforce import BruteForcePolicy
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.netutil import machine_names
from gateway.policy.access import AccessConfig, session_cookie_name
from gateway.policy.allowlist import CompiledAllowlist
from gateway.policy.credentials import session_usable, token_usable
from gateway.policy.names import OwnNames, own_names
from gateway.proxy import errorpages
from gateway.proxy.engine import ProxyEngine
from gateway.proxy.state import Limits, Listener, ProxyState, UpstreamTarget
from gateway.services import held, sessions, users
from gateway.services import peers as peer_service
from gateway.services.policy import PolicyLoader
from gateway.services.recorder import Recorder
from gateway.settings import (
    Settings,
    SettingsError,
    check_oidc,
    check_tls,
    check_wireguard,
    require_upstream,
)
from gateway.store import db
from gateway.store.worker import DbWorker
from gateway.system.limits import AcceptGuard, raise_open_file_limit
from gateway.tls.certificates import (
    CertificateError,
    CertificateSource,
    ensure_certificate,
    fingerprint,
)
from gateway.upstream.monitor import UpstreamMonitor
from gateway.web.app import create_web_app
from gateway.web.context import WebContext
from gateway.wireguard.interface import WireguardError
from gateway.wireguard.manager import WireguardManager

logger = logging.getLogger("cemm_gateway")

HITS_FLUSH_INTERVAL = 5.0
ACTIVITY_FLUSH_INTERVAL = 10.0
PURGE_INTERVAL = 3600.0


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _listen_address(listener: Listener, listen_host: str) -> str:
    """Where a listener listens, for the log: the address in its mode spec (``...@host:port``,
    the tunnel's listeners), else ``listen_host``; ``*`` for every address."""
    at = listener.mode_spec.rpartition("@")[2]
    host = at.rpartition(":")[0] if ":" in at else listen_host
    return _hostport(host or "*", listener.port)


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
        check_oidc(settings)
        check_tls(settings)
        check_wireguard(settings)
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
        self._worker: DbWorker | None = None
        self._background: DbWorker | None = None
        self.recorder: Recorder | None = None
        self._read_failure: str | None = None
        self._accept_guard: AcceptGuard | None = None
        self._disk_full = False
        self._reopen_failure: str | None = None
        self._wireguard: WireguardManager | None = None
        self._oidc: Any = None
        self.upstream_monitor: UpstreamMonitor | None = None
        self._auth_generation = 0
        self.started = asyncio.Event()
        self._stopping = False

    # -- start-up ---------------------------------------------------------------------
    async def start(self) -> None:
        settings = self.settings
        # Before any listener exists: every accept goes through it.
        self._accept_guard = AcceptGuard(asyncio.get_running_loop())
        self._accept_guard.install()
        self.conn = db.connect(settings.database_path)
        self._watcher = db.ChangeWatcher(self.conn)
        self._disk_full = db.read_only(self.conn)
        if self._disk_full:
            logger.warning(
                "%s: running read-only on the existing database (allowlist, sessions and "
                "API tokens are enforced; logins and changes are refused until there is room)",
                db.disk_full_message(settings.data_dir),
            )
        self._create_initial_admin()
        await asyncio.to_thread(passwords.warm_up)
        self.policy_loader = PolicyLoader(self.conn, settings, self.clock)
        policy = self.policy_loader.load()

        admin_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        admin_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # asyncio sets TCP_NODELAY only on sockets made with IPPROTO_TCP; without it each
        # kept-alive answer waits ~40 ms for a delayed ACK. Accepted sockets inherit it.
        admin_socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        admin_socket.bind(("127.0.0.1", 0))
        internal_port = admin_socket.getsockname()[1]

        upstream = settings.upstream
        # With [upstream] mac alone the address is not known yet; requests are routed one
        # by one (addons/forwarding.py), so the listener's own target is only a placeholder.
        target_host = upstream.host or "cemm.invalid"
        listen = settings.listen
        listeners = [
            Listener(
                "web",
                listen.http_port,
                f"reverse:http://{_hostport(target_host, upstream.http_port)}@{listen.http_port}",
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
                    f"reverse:http://{_hostport(target_host, upstream.ws_port)}@{listen.ws_port}",
                ),
            )
        if settings.wireguard.enabled:
            # The tunnel must exist before listeners bind its address.
            self._wireguard = WireguardManager(
                settings,
                self.conn,
                gateway_ports=[listen.http_port, listen.ws_port, listen.admin_port],
                clock=self.clock,
            )
            try:
                await self._wireguard.start()
            except WireguardError as error:
                raise SettingsError(str(error)) from None
            # Listeners of their own on the tunnel addresses [listen] host does not cover
            # (both of them for a specific address).
            listeners += [
                Listener(
                    listener.name,
                    listener.port,
                    listener.mode_spec.rsplit("@", 1)[0] + f"@{address}:{listener.port}",
                )
                for address in self._wireguard.interface.uncovered_addresses(listen.host)
                for listener in listeners
            ]
        self.state = state = ProxyState(
            listeners={listener.mode_spec: listener for listener in listeners},
            policy=policy,
            upstream=UpstreamTarget(
                host=upstream.host,
                http_port=upstream.http_port,
                ws_port=upstream.ws_port,
                connect_timeout=upstream.connect_timeout,
                admin_port=internal_port,
                response_timeout=upstream.response_timeout,
                websocket_ping_interval=upstream.websocket_ping_interval,
            ),
            limits=Limits(
                max_header_bytes=settings.limits.max_header_bytes,
                max_request_body_bytes=settings.limits.max_request_body_bytes,
                header_timeout=settings.limits.header_timeout,
                idle_timeout=settings.limits.idle_timeout,
                max_connections_per_client=settings.limits.max_connections_per_client,
            ),
            access=self._access_config(),
            session_cookie=session_cookie_name(tls=settings.tls.enabled),
        )
        self._reload_auth()
        # From here on the event loop's connection only reads; writes go to the recorder.
        db.set_busy_timeout(self.conn, db.SHORT_BUSY_TIMEOUT)
        self._background = DbWorker(
            settings.database_path, busy_timeout=db.SHORT_BUSY_TIMEOUT, name="gateway-recorder"
        )
        self.registry = ConnectionRegistry(state)
        self.guard = ConnectionGuard(state, self.registry)
        held.enable()
        self.recorder = Recorder(
            self._background, state, drain_hits=self.guard.drain_hits, clock=self.clock
        )
        self.upstream_monitor = UpstreamMonitor(
            upstream, state, record_audit=self.recorder.record_audit, clock=self.clock
        )
        errorpages.upstream_describer = self.upstream_monitor.describe

        self._worker = DbWorker(settings.database_path)
        bruteforce = settings.auth.bruteforce
        context = WebContext(
            settings=settings,
            db=self._worker,
            state=state,
            auth_changed=self._auth_changed,
            status=self.status,
            bruteforce=BruteForcePolicy(
                window=bruteforce.window,
                free_attempts=bruteforce.free_attempts,
                max_delay=bruteforce.max_delay,
                ban_after=bruteforce.ban_after,
                ban_duration=bruteforce.ban_duration,
            ),
            never_ban=CompiledAllowlist.from_networks(bruteforce.never_ban),
            oidc=self._oidc_client(),
        )
        web_app = create_web_app(context)
        web_app.state.wireguard = self._wireguard
        config = uvicorn.Config(
            web_app, log_config=None, access_log=False, lifespan="off", server_header=False
        )
        self._admin_server = _AdminServer(config)
        self._tasks.append(
            asyncio.create_task(self._admin_server.serve(sockets=[admin_socket]), name="admin app")
        )

        tls = settings.tls
        addons: list[Any] = [
            RequestLog(state, access=settings.log.access),
            RequestMetrics(),
            self.registry,
            self.guard,
            TlsTermination(state, self._certificates()),
            RequestLimits(state),
            Upgrades(state, record_audit=self.recorder.record_audit),
        ]
        addons.append(ClientAddress(state, self.registry))
        if tls.enabled:
            # After ClientAddress: a trusted reverse proxy may have received HTTPS itself.
            addons.append(HttpsOnly(state, hsts_max_age=tls.hsts_max_age if tls.hsts else None))
        addons += [
            Authentication(state, self.registry),
            ReadOnlyWebSockets(state, self.registry),
            *self._extra_addons,
            UpstreamIdentity(state),
            Forwarding(state),
        ]
        if settings.single_port_enabled:
            ws_ports = sorted({p for p in (listen.ws_port, upstream.ws_port) if p})
            addons.append(PageFixup(state, ws_ports=ws_ports))
        addons.append(Upstream(state))
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
        self._tasks.append(asyncio.create_task(self._watch_state(), name="state reload"))
        self._tasks.append(
            asyncio.create_task(self.upstream_monitor.run(), name="upstream monitor")
        )
        self._log_start(listeners)
        self.started.set()

    def _log_start(self, listeners: list[Listener]) -> None:
        settings = self.settings
        assert self.state is not None
        for listener in listeners:
            target = (
                "admin app"
                if listener.name == "admin"
                else _hostport(*self.state.upstream.address_for(listener.name))
                if self.state.upstream.host
                else f"the CEMM with MAC {self.state.upstream.mac} (looking for it)"
            )
            logger.info(
                "listening on %s (%s) -> %s",
                _listen_address(listener, settings.listen.host),
                listener.name,
                target,
            )
        logger.info(
            "allowlist default networks: %s", ", ".join(self.policy_loader.default_networks)
        )
        logger.info("admin networks: %s", ", ".join(settings.allowlist.admin_networks))
        if settings.allowlist.trusted_proxies:
            logger.info("trusted proxies: %s", ", ".join(settings.allowlist.trusted_proxies))

    def _certificates(self) -> CertificateSource | None:
        tls = self.settings.tls
        if not tls.enabled:
            return None
        try:
            cert, key = ensure_certificate(
                cert=tls.cert,
                key=tls.key,
                data_dir=self.settings.data_dir,
                hostnames=tls.hostnames,
                addresses=tls.addresses,
            )
            source = CertificateSource(cert, key)
        except (CertificateError, OSError) as error:
            raise SettingsError(f"[tls]: {error}") from None
        logger.info("TLS on every listener with %s (sha256 %s)", cert, fingerprint(cert))
        return source

    # -- first start ------------------------------------------------------------------
    def _create_initial_admin(self) -> None:
        auth = self.settings.auth
        password = auth.initial_admin_password or None
        if auth.initial_admin_password_file:
            try:
                password = Path(auth.initial_admin_password_file).read_text().strip() or None
            except OSError as error:
                raise SettingsError(
                    f"auth.initial_admin_password_file: cannot read "
                    f"{auth.initial_admin_password_file}: {error.strerror}"
                ) from None
        assert self.conn is not None
        try:
            generated = users.ensure_initial_admin(
                self.conn, auth.initial_admin, password, clock=self.clock
            )
        except users.UserExistsError as error:
            # The CEMM stays usable for the existing accounts; only the admin pages wait.
            logger.warning("no admin account: %s", error)
            return
        except users.UserError as error:
            raise SettingsError(f"cannot create the first admin: {error}") from None
        if generated:
            # Shown once, on the console only: it is not stored anywhere in clear text.
            print(
                "\n"
                "  ================================================================\n"
                f"  First start: created the admin user '{auth.initial_admin}'.\n"
                f"  Password: {generated}\n"
                "  It is shown only this once. Change it on the account page.\n"
                "  ================================================================\n",
                flush=True,
            )

    def _oidc_client(self) -> Any:
        oidc = self.settings.oidc
        if not oidc.enabled:
            return None
        from gateway.auth.oidc import OidcClient, OidcConfig

        secret = oidc.client_secret
        if oidc.client_secret_file:
            try:
                secret = Path(oidc.client_secret_file).read_text().strip()
            except OSError as error:
                raise SettingsError(
                    f"oidc.client_secret_file: cannot read {oidc.client_secret_file}: "
                    f"{error.strerror}"
                ) from None
        try:
            config = OidcConfig(
                discovery_url=oidc.discovery_url,
                client_id=oidc.client_id,
                client_secret=secret,
                redirect_uri=oidc.redirect_uri,
                allowed_emails=tuple(oidc.allowed_emails),
                allowed_groups=tuple(oidc.allowed_groups),
                groups_claim=oidc.groups_claim,
                trust_unverified_email=oidc.trust_unverified_email,
            )
        except ValueError as error:
            raise SettingsError(f"invalid [oidc] configuration: {error}") from None
        self._oidc = OidcClient(config, clock=self.clock)
        return self._oidc

    def _access_config(self) -> AccessConfig:
        """Who needs no login: trusted networks, and VPN peers marked as trusted devices."""
        settings = self.settings
        trusted = list(settings.auth.trusted_networks)
        if self._wireguard is not None:
            assert self.conn is not None
            trusted += peer_service.trusted_addresses(self.conn, clock=self.clock)
        return AccessConfig(
            trusted_networks=CompiledAllowlist.from_networks(trusted),
            names=self._own_names(),
            web_port=settings.listen.http_port,
        )

    def _own_names(self) -> OwnNames:
        """The gateway's own names (gateway/policy/names.py): what the Origin rule and the
        trusted-network rule accept, and what links are printed with."""
        settings = self.settings
        addresses = machine_names(settings.listen.host)
        if self._wireguard is not None:
            interface = self._wireguard.interface
            addresses += [
                interface.gateway_v4,
                *([interface.gateway_v6] if interface.gateway_v6 else []),
            ]
        return own_names(
            public_url=settings.listen.public_url,
            public_hostnames=settings.auth.public_hostnames,
            tls_hostnames=settings.tls.hostnames if settings.tls.enabled else (),
            addresses=addresses,
        )

    # -- logins -----------------------------------------------------------------------
    def _reload_auth(self) -> None:
        assert self.state is not None and self.conn is not None
        self._auth_generation += 1
        self.state.auth = sessions.load_snapshot(
            self.conn,
            now=self.clock.now(),
            idle_timeout=self.settings.auth.session_idle_timeout,
            generation=self._auth_generation,
        )

    def _auth_changed(self) -> None:
        """A login, logout or revoke in this process: apply it before the next request."""
        self._reload_auth()
        self._enforce_credentials()

    def _enforce_credentials(self) -> int:
        state, registry = self.state, self.registry
        if state is None or registry is None:
            return 0
        now = self.clock.now()
        by_id = {info.id: info for info in state.auth.sessions.values()}
        idle = state.auth.idle_timeout

        def session_ok(session_id: str) -> bool:
            info = by_id.get(session_id)
            return info is not None and session_usable(
                info,
                now=now,
                last_seen=state.session_activity.get(session_id, 0.0),
                idle_timeout=idle,
            )

        def token_ok(token_id: str) -> bool:
            info = state.auth.api_tokens.get(token_id)
            return info is not None and token_usable(info, now=now)

        return registry.enforce_credentials(session_ok, token_ok)

    # -- background work --------------------------------------------------------------
    async def _watch_state(self) -> None:
        """Reload the policy and logins when the database changed; enforce them; have the
        recorder write what the proxy counted. Reads only, on the event loop; every write
        goes through the recorder's worker (:mod:`gateway.services.recorder`)."""
        assert self.state is not None and self.registry is not None and self.guard is not None
        assert self.recorder is not None
        interval = self.settings.reload_interval
        last_hits = last_activity = time.monotonic()
        last_purge = 0.0
        auth = self.settings.auth
        while True:
            await asyncio.sleep(interval)
            try:
                self._check_disk()
                changed = self._watcher.changed()
                if changed or self.policy_loader.stale():
                    policy = self.policy_loader.load()
                    self.state.policy = policy
                    closed = self.registry.enforce(policy)
                    logger.info(
                        "policy reloaded (generation %d)%s",
                        policy.generation,
                        f"; closed {closed} connection(s)" if closed else "",
                    )
                if changed:
                    self._reload_auth()
                    if self._wireguard is not None:
                        self._wireguard.changed()
                        self.state.access = self._access_config()
                # An open WebSocket is activity: its session does not go idle.
                now = self.clock.now()
                for session_id in self.registry.websocket_sessions():
                    self.state.session_activity[session_id] = now
                self._enforce_credentials()
                self._read_failure = None
            except sqlite3.Error as error:
                # Another process's lock or a full disk: the last good state stays in force.
                if self._read_failure != str(error):
                    logger.warning("could not read the database (retrying): %s", error)
                self._read_failure = str(error)
            except Exception:
                # Keep the last good state in force; a broken reload must not open anything.
                logger.exception("reloading the gateway's state failed; the previous one stays")
            recorder = self.recorder
            if held.pending() and not self._disk_full:
                recorder.start("held", recorder.save_held)
            if time.monotonic() - last_hits >= HITS_FLUSH_INTERVAL:
                last_hits = time.monotonic()
                recorder.start("hits", recorder.flush_hits)
            if time.monotonic() - last_activity >= ACTIVITY_FLUSH_INTERVAL:
                last_activity = time.monotonic()
                recorder.start("activity", recorder.flush_activity)
            if time.monotonic() - last_purge >= PURGE_INTERVAL:
                last_purge = time.monotonic()
                recorder.start(
                    "purge",
                    functools.partial(
                        recorder.purge,
                        idle_timeout=auth.session_idle_timeout,
                        window=auth.bruteforce.window,
                        retention_days=auth.audit_retention_days,
                    ),
                )

    def _check_disk(self) -> None:
        """Say when the data directory's disk fills up or has room again; reopen the
        database for writing when a read-only start finds room."""
        data_dir = self.settings.data_dir
        full = db.disk_full(data_dir)
        if full and not self._disk_full:
            logger.warning(
                "%s: proxying goes on; logins and changes are refused, and session "
                "activity is kept in memory until there is room",
                db.disk_full_message(data_dir),
            )
        elif not full and self._disk_full:
            logger.info("there is room on the disk holding %s again", data_dir)
        self._disk_full = full
        if not full and self.conn is not None and db.read_only(self.conn):
            try:
                conn = db.connect(self.settings.database_path, busy_timeout=db.SHORT_BUSY_TIMEOUT)
            except db.StoreError as error:
                if self._reopen_failure != str(error):
                    logger.warning("the database is still read-only: %s", error)
                self._reopen_failure = str(error)
                return
            self._reopen_failure = None
            if db.read_only(conn):  # still not enough room to open it for writing
                conn.close()
                return
            old, self.conn = self.conn, conn
            self._watcher = db.ChangeWatcher(conn)
            self.policy_loader = PolicyLoader(conn, self.settings, self.clock)
            old.close()
            if self.state is not None:
                # What others changed meanwhile is read now.
                self.state.policy = self.policy_loader.load()
                self._reload_auth()
            logger.info("the database is writable again")

    def storage_status(self) -> dict[str, Any]:
        """What ``/healthz`` details, the dashboard and metrics say about the data disk."""
        data_dir = self.settings.data_dir
        full = self._disk_full
        return {
            "disk_full": full,
            "read_only": bool(self.conn is not None and db.read_only(self.conn)),
            "free_bytes": db.free_bytes(data_dir),
            "message": db.disk_full_message(data_dir) if full else None,
            "failing_writes": self.recorder.failing if self.recorder else {},
        }

    def status(self) -> dict[str, Any]:
        state = self.state
        if state is None:
            return {}
        return {
            "open_connections": len(self.registry.clients) if self.registry else 0,
            "open_websockets": self.registry.open_websockets if self.registry else 0,
            "websocket_sessions": sorted(self.registry.websocket_sessions())
            if self.registry
            else [],
            "cemm": {
                str(port): {"last_ok": status.last_ok, "failing_since": status.failing_since}
                for port, status in state.status.ports.items()
            }
            | (self.upstream_monitor.facts() if self.upstream_monitor else {}),
            "upstream": self.upstream_monitor.status() if self.upstream_monitor else {},
            "denials": dict(state.denials),
            "vpn": self._wireguard.status() if self._wireguard is not None else None,
            "storage": self.storage_status(),
        }

    # -- stopping ---------------------------------------------------------------------
    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        if self.engine is not None:
            await self.engine.stop()
        if self._wireguard is not None:
            with contextlib.suppress(Exception):
                await self._wireguard.stop()
        for task in self._tasks:
            if task.get_name() != "admin app":
                task.cancel()
        if self._admin_server is not None:
            self._admin_server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.gather(*self._tasks, return_exceptions=True), timeout=1.5
            )
        if self.recorder is not None:
            # What was counted since the last round, if the database takes it now.
            with contextlib.suppress(Exception):
                await self.recorder.wait(timeout=0.5)
                self.recorder.start("hits", self.recorder.flush_hits)
                self.recorder.start("activity", self.recorder.flush_activity)
                await self.recorder.wait(timeout=1.0)
        held.enable(False)
        if held.pending():
            logger.warning(
                "%d revocation(s) held in memory could not be saved (the disk is full)",
                held.pending(),
            )
        for worker in (self._worker, self._background):
            if worker is not None:
                worker.close()
        if self._oidc is not None:
            with contextlib.suppress(Exception):
                await self._oidc.aclose()
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self._accept_guard is not None:
            self._accept_guard.uninstall()


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
    if ready_message:
        logger.info("cemm-gateway is ready")
    await stop.wait()
    logger.info("stopping")
    await gateway.stop()
