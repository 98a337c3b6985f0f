"""What the gateway reads and makes once, at start, before anything listens.

- The first admin account (a generated password is shown once, on the console only).
- The OIDC client, with its secret from the file or the setting.
- The TLS certificate (made on first start when none is configured).
- The listeners: web -> CEMM:80, ws -> CEMM:8090, admin -> the web app on an internal
  loopback port, and listeners of their own on the WireGuard tunnel's addresses that
  ``[listen] host`` does not cover.
- Who needs no login (trusted networks, trusted VPN peers) and the gateway's own names.
- The proxy's state and its addons, in the order they see each event.

Every problem here is a :class:`~gateway.settings.SettingsError` naming the setting.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from addons.acme_challenge import AcmeChallenge
from addons.authentication import Authentication
from addons.client_address import ClientAddress
from addons.connection_guard import ConnectionGuard
from addons.connection_registry import ConnectionRegistry
from addons.forwarding import Forwarding
from addons.gateway_menu import GatewayMenu
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
from gateway.acme.manager import AcmeManager
from gateway.acme.storage import AcmeStorage
from gateway.clock import Clock
from gateway.netutil import machine_names
from gateway.policy.access import AccessConfig, session_cookie_name
from gateway.policy.allowlist import CompiledAllowlist
from gateway.policy.names import OwnNames, own_names
from gateway.proxy.errorpages import ErrorPages
from gateway.proxy.state import Limits, Listener, PolicySnapshot, ProxyState, UpstreamTarget
from gateway.services import peers as peer_service
from gateway.services import users
from gateway.services.recorder import Recorder
from gateway.settings import Settings, SettingsError
from gateway.settings.acme import AcmeSettings
from gateway.tls.certificates import (
    CertificateError,
    CertificateSource,
    ensure_certificate,
    fingerprint,
)
from gateway.wireguard.manager import WireguardManager

logger = logging.getLogger("cemm_gateway")


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _read_secret(path: str, setting: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as error:
        raise SettingsError(f"{setting}: cannot read {path}: {error.strerror}") from None


# -- the first admin ----------------------------------------------------------------------
def create_initial_admin(conn: sqlite3.Connection, settings: Settings, clock: Clock) -> None:
    auth = settings.auth
    password = auth.initial_admin_password or None
    if auth.initial_admin_password_file:
        password = (
            _read_secret(auth.initial_admin_password_file, "auth.initial_admin_password_file")
            or None
        )
    try:
        generated = users.ensure_initial_admin(conn, auth.initial_admin, password, clock=clock)
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


# -- OIDC and TLS -------------------------------------------------------------------------
def oidc_client(settings: Settings, clock: Clock) -> Any:
    """The OIDC client (:class:`gateway.auth.oidc_client.OidcClient`), None without ``[oidc]``."""
    oidc = settings.oidc
    if not oidc.enabled:
        return None
    from gateway.auth.oidc import OidcConfig
    from gateway.auth.oidc_client import OidcClient

    secret = oidc.client_secret
    if oidc.client_secret_file:
        secret = _read_secret(oidc.client_secret_file, "oidc.client_secret_file")
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
    return OidcClient(config, clock=clock)


def acme_manager(settings: Settings) -> AcmeManager | None:
    """The ACME certificate's keeper with ``[acme] enabled`` (and TLS on), else None."""
    if not (settings.acme.enabled and settings.tls.enabled):
        return None
    return AcmeManager(settings.acme, AcmeStorage(settings.data_dir))


def acme_names(acme: AcmeSettings) -> list[str]:
    """ACME's domains that are host names (a wildcard names no host of the gateway)."""
    return [name for name in acme.domains if not name.startswith("*.")] if acme.enabled else []


def certificates(settings: Settings, acme: AcmeManager | None = None) -> CertificateSource | None:
    """The certificate every listener serves: ACME's files (a self-signed stand-in until
    the first order), the owner's, or a self-signed one."""
    tls = settings.tls
    if not tls.enabled:
        return None
    try:
        if acme is not None:
            acme.ensure_standin()
        cert, key = ensure_certificate(
            cert=str(acme.storage.cert) if acme is not None else tls.cert,
            key=str(acme.storage.key) if acme is not None else tls.key,
            data_dir=settings.data_dir,
            hostnames=tls.hostnames,
            addresses=tls.addresses,
        )
        source = CertificateSource(cert, key)
    except (CertificateError, OSError) as error:
        raise SettingsError(f"[tls]: {error}") from None
    logger.info("TLS on every listener with %s (sha256 %s)", cert, fingerprint(cert))
    return source


# -- listeners ----------------------------------------------------------------------------
def admin_socket() -> socket.socket:
    """The web app's socket on an internal loopback port (the admin listener's target)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # asyncio sets TCP_NODELAY only on sockets made with IPPROTO_TCP; without it each
    # kept-alive answer waits ~40 ms for a delayed ACK. Accepted sockets inherit it.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def listeners(settings: Settings, internal_port: int) -> list[Listener]:
    """The web, ws and admin listeners on ``[listen] host``."""
    upstream, listen = settings.upstream, settings.listen
    # With [upstream] mac alone the address is not known yet; requests are routed one
    # by one (addons/forwarding.py), so the listener's own target is only a placeholder.
    target = upstream.host or "cemm.invalid"
    found = [
        Listener(
            "web",
            listen.http_port,
            f"reverse:http://{hostport(target, upstream.http_port)}@{listen.http_port}",
        ),
        Listener(
            "admin",
            listen.admin_port,
            f"reverse:http://127.0.0.1:{internal_port}@{listen.admin_port}",
        ),
    ]
    if listen.ws_port:
        found.insert(
            1,
            Listener(
                "ws",
                listen.ws_port,
                f"reverse:http://{hostport(target, upstream.ws_port)}@{listen.ws_port}",
            ),
        )
    return found


def tunnel_listeners(
    found: list[Listener], wireguard: WireguardManager, listen_host: str
) -> list[Listener]:
    """Listeners of their own on the tunnel addresses ``[listen] host`` does not cover
    (both of them for a specific address)."""
    return [
        Listener(
            listener.name,
            listener.port,
            listener.mode_spec.rsplit("@", 1)[0] + f"@{address}:{listener.port}",
        )
        for address in wireguard.interface.uncovered_addresses(listen_host)
        for listener in found
    ]


def listen_address(listener: Listener, listen_host: str) -> str:
    """Where a listener listens, for the log: the address in its mode spec (``...@host:port``,
    the tunnel's listeners), else ``listen_host``; ``*`` for every address."""
    at = listener.mode_spec.rpartition("@")[2]
    host = at.rpartition(":")[0] if ":" in at else listen_host
    return hostport(host or "*", listener.port)


# -- who needs no login -------------------------------------------------------------------
def access_config(
    settings: Settings,
    conn: sqlite3.Connection,
    wireguard: WireguardManager | None,
    clock: Clock,
) -> AccessConfig:
    """Who needs no login: trusted networks, and VPN peers marked as trusted devices."""
    trusted = list(settings.auth.trusted_networks)
    if wireguard is not None:
        trusted += peer_service.trusted_addresses(conn, clock=clock)
    return AccessConfig(
        trusted_networks=CompiledAllowlist.from_networks(trusted),
        names=gateway_names(settings, wireguard),
        web_port=settings.listen.http_port,
        viewer_websocket_messages=settings.roles.viewer_websocket_messages,
    )


def gateway_names(settings: Settings, wireguard: WireguardManager | None) -> OwnNames:
    """The gateway's own names (gateway/policy/names.py): what the Origin rule and the
    trusted-network rule accept, and what links are printed with."""
    addresses = machine_names(settings.listen.host)
    if wireguard is not None:
        interface = wireguard.interface
        addresses += [
            interface.gateway_v4,
            *([interface.gateway_v6] if interface.gateway_v6 else []),
        ]
    return own_names(
        public_url=settings.listen.public_url,
        public_hostnames=settings.auth.public_hostnames,
        tls_hostnames=(
            [*settings.tls.hostnames, *acme_names(settings.acme)] if settings.tls.enabled else ()
        ),
        addresses=addresses,
    )


# -- the proxy ----------------------------------------------------------------------------
def proxy_state(
    settings: Settings,
    listeners: list[Listener],
    policy: PolicySnapshot,
    access: AccessConfig,
    internal_port: int,
) -> ProxyState:
    upstream, limits = settings.upstream, settings.limits
    return ProxyState(
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
            max_header_bytes=limits.max_header_bytes,
            max_request_body_bytes=limits.max_request_body_bytes,
            header_timeout=limits.header_timeout,
            idle_timeout=limits.idle_timeout,
            max_connections_per_client=limits.max_connections_per_client,
        ),
        access=access,
        session_cookie=session_cookie_name(tls=settings.tls.enabled),
        error_pages=ErrorPages(language=settings.ui.language),
    )


def proxy_addons(
    settings: Settings,
    state: ProxyState,
    registry: ConnectionRegistry,
    guard: ConnectionGuard,
    recorder: Recorder,
    *,
    extra: Sequence[Any] = (),
    acme: AcmeManager | None = None,
) -> list[Any]:
    """The proxy's addons, in the order they see each event."""
    tls, listen, upstream = settings.tls, settings.listen, settings.upstream
    addons: list[Any] = [
        RequestLog(state, access=settings.log.access),
        RequestMetrics(),
        registry,
        guard,
    ]
    if acme is not None and settings.acme.challenge == "http-01":
        # Right after the guard: before TLS, the login and the HTTPS redirect.
        window = AcmeChallenge(state, acme.board, record_audit=recorder.record_audit)
        guard.challenge_window = registry.challenge_window = window
        addons.append(window)
    addons += [
        TlsTermination(state, certificates(settings, acme)),
        RequestLimits(state),
        Upgrades(state, record_audit=recorder.record_audit),
        ClientAddress(state, registry),
    ]
    if tls.enabled:
        # After ClientAddress: a trusted reverse proxy may have received HTTPS itself.
        addons.append(HttpsOnly(state, hsts_max_age=tls.hsts_max_age if tls.hsts else None))
    addons += [
        Authentication(state, registry),
        ReadOnlyWebSockets(state, registry),
        *extra,
        UpstreamIdentity(state),
        Forwarding(state),
    ]
    if settings.single_port_enabled:
        ws_ports = sorted({p for p in (listen.ws_port, upstream.ws_port) if p})
        addons.append(PageFixup(state, ws_ports=ws_ports))
    if settings.ui.menu:
        addons.append(GatewayMenu(state))
    addons.append(Upstream(state))
    return addons
