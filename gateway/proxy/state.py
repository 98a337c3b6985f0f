"""What the proxy's addons consult: plain data, replaced atomically by the app.

Addons read :class:`ProxyState` on every connection or request; the app swaps whole
snapshots (``state.policy = new``) rather than mutating them, so a hook never sees half a
change. Nothing here touches the database or the network.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from gateway.policy.access import AccessConfig
from gateway.policy.allowlist import CompiledAllowlist
from gateway.policy.credentials import AuthSnapshot

if TYPE_CHECKING:
    from gateway.upstream.health import UpstreamHealth

ListenerName = Literal["web", "ws", "admin"]


@dataclass(frozen=True)
class Listener:
    """One listening port of the gateway and what it forwards to."""

    name: ListenerName
    port: int
    mode_spec: str


@dataclass(frozen=True)
class PolicySnapshot:
    """The compiled access policy in force. Immutable; replaced as a whole."""

    allowlist: CompiledAllowlist
    admin_allowlist: CompiledAllowlist
    trusted_proxies: CompiledAllowlist
    generation: int = 0

    def allowlist_for(self, listener: ListenerName) -> CompiledAllowlist:
        return self.admin_allowlist if listener == "admin" else self.allowlist


@dataclass
class UpstreamTarget:
    """Where requests go. ``host`` can change at run time (the CEMM moves on DHCP).

    With ``mac`` set (``[upstream] mac``), ``host`` is empty until the upstream monitor has
    confirmed the device's identity, and emptied again when it is in doubt: an empty host
    means "forward nothing" (the upstream identity addon answers 503).
    """

    host: str
    http_port: int
    ws_port: int
    connect_timeout: float
    admin_host: str = "127.0.0.1"
    admin_port: int = 0
    mac: str = ""
    # The CEMM must start answering within this many seconds (504 otherwise), and a
    # streamed answer must not pause longer.
    response_timeout: float = 30.0
    # A WebSocket to the CEMM silent this long gets a ping; silent twice as long, it is
    # closed (and the client told 1011).
    websocket_ping_interval: float = 20.0

    def address_for(self, listener: ListenerName) -> tuple[str, int]:
        if listener == "admin":
            return self.admin_host, self.admin_port
        return self.host, self.ws_port if listener == "ws" else self.http_port


@dataclass
class PortStatus:
    """What the proxy has seen of one CEMM port: last success and failure."""

    last_ok: float | None = None
    failing_since: float | None = None

    def ok(self, now: float) -> None:
        self.last_ok = now
        self.failing_since = None

    def failed(self, now: float) -> None:
        if self.failing_since is None:
            self.failing_since = now


@dataclass
class UpstreamStatus:
    ports: dict[int, PortStatus] = field(default_factory=dict)

    def port(self, port: int) -> PortStatus:
        return self.ports.setdefault(port, PortStatus())

    def describe(self) -> str | None:
        failing = [(p, s.failing_since) for p, s in self.ports.items() if s.failing_since]
        if not failing:
            return None
        port, since = min(failing, key=lambda item: item[1] or 0.0)
        stamp = time.strftime("%H:%M:%S", time.localtime(since))
        return (
            f"The CEMM has not answered on port {port} since {stamp}. Check that it is "
            "switched on and connected to the network; the page will work again as soon "
            "as it answers."
        )


@dataclass
class Limits:
    max_header_bytes: int
    max_request_body_bytes: int
    # A new connection must send a complete request head within header_timeout; a kept-alive
    # one its next head within idle_timeout of the last answer. 0 = no limit.
    header_timeout: float = 10.0
    idle_timeout: float = 60.0
    # Open connections per client address (admin networks and trusted proxies exempt).
    max_connections_per_client: int = 100


@dataclass
class ProxyState:
    listeners: dict[str, Listener]
    policy: PolicySnapshot
    upstream: UpstreamTarget
    limits: Limits
    access: AccessConfig
    session_cookie: str
    auth: AuthSnapshot = field(default_factory=AuthSnapshot)
    # When each session / API token was last used, kept here and written in batches.
    session_activity: dict[str, float] = field(default_factory=dict)
    token_activity: dict[str, float] = field(default_factory=dict)
    status: UpstreamStatus = field(default_factory=UpstreamStatus)
    # Proves to the admin app that a request came through the proxy's front door.
    internal_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    denials: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    # The upstream monitor's report (health, identity, clock drift); None without a monitor.
    cemm: UpstreamHealth | None = None

    def listener_for_spec(self, spec: str) -> Listener | None:
        return self.listeners.get(spec)
