"""What the proxy's addons consult: immutable snapshots, written by one owner.

:class:`ProxyState` is the one writer of everything the addons and the web app read on a
request. The rules:

- **Reads are snapshots.** ``policy``, ``auth``, ``access``, ``upstream``, ``limits`` and
  ``status`` are frozen dataclasses, replaced as a whole; ``listeners`` and the counters
  (``denials``, ``requests``, ``session_activity``, ``token_activity``) are read-only
  mapping views. A hook never sees half a change, and no reader can write through what it
  was given.
- **Writes are methods.** Every change goes through a method of this class: the app's
  tasks swap snapshots (:meth:`set_policy`, :meth:`set_auth`, :meth:`set_access`), the
  upstream monitor re-points the proxy (:meth:`set_upstream_host`), addons count what
  they refused (:meth:`count_denial`) and note when a login was used
  (:meth:`touch_session`), the recorder takes those times to write them
  (:meth:`take_activity`). A grep for ``state.set_`` finds every writer.
- **One session at a time.** A login adds its session to the login snapshot
  (:meth:`add_session`) and a logout or revoke removes it (:meth:`remove_sessions`)
  without re-reading the database; the full re-read (:mod:`gateway.logins`) runs off the
  event loop.

Nothing here touches the database or the network.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import secrets
import time
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from gateway.policy.access import AccessConfig
from gateway.policy.allowlist import CompiledAllowlist
from gateway.policy.credentials import AuthSnapshot, SessionInfo

if TYPE_CHECKING:
    from gateway.proxy.errorpages import ErrorPages
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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class PortStatus:
    """What the proxy has seen of one CEMM port: last success and failure."""

    last_ok: float | None = None
    failing_since: float | None = None


@dataclass(frozen=True)
class UpstreamStatus:
    """What the proxy has seen of the CEMM's ports, by port number."""

    ports: Mapping[int, PortStatus] = field(default_factory=lambda: MappingProxyType({}))

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


@dataclass(frozen=True)
class Limits:
    max_header_bytes: int
    max_request_body_bytes: int
    # A new connection must send a complete request head within header_timeout; a kept-alive
    # one its next head within idle_timeout of the last answer. 0 = no limit.
    header_timeout: float = 10.0
    idle_timeout: float = 60.0
    # Open connections per client address (admin networks and trusted proxies exempt).
    max_connections_per_client: int = 100


def _with_session(auth: AuthSnapshot, token_hash: str, info: SessionInfo) -> AuthSnapshot:
    return dataclasses.replace(auth, sessions=MappingProxyType({**auth.sessions, token_hash: info}))


def _without_sessions(auth: AuthSnapshot, session_ids: Collection[str]) -> AuthSnapshot:
    kept = {key: info for key, info in auth.sessions.items() if info.id not in session_ids}
    if len(kept) == len(auth.sessions):
        return auth
    return dataclasses.replace(auth, sessions=MappingProxyType(kept))


#: The header by which the proxy vouches for a request it forwards to the web app: the
#: value is :attr:`ProxyState.internal_secret`. The proxy adds it (addons/forwarding.py)
#: and drops any a client sent; the web app's front door refuses requests without it.
INTERNAL_HEADER = "X-Cemm-Gateway-Internal"


class ProxyState:
    """The one owner of the proxy's state (the module docstring has the rules)."""

    def __init__(
        self,
        *,
        listeners: Mapping[str, Listener],
        policy: PolicySnapshot,
        upstream: UpstreamTarget,
        limits: Limits,
        access: AccessConfig,
        session_cookie: str,
        auth: AuthSnapshot | None = None,
        error_pages: ErrorPages | None = None,
    ) -> None:
        self.listeners: Mapping[str, Listener] = MappingProxyType(dict(listeners))
        self.session_cookie = session_cookie
        # Proves to the web app that a request came through the proxy (INTERNAL_HEADER).
        self.internal_secret = secrets.token_urlsafe(32)
        # The gateway's own error pages, made by the app (their 502/503 text describes the
        # CEMM); None: the plain pages (addons/base.py), as in the addons' unit tests.
        self.error_pages = error_pages
        self._policy = policy
        self._upstream = upstream
        self._limits = limits
        self._access = access
        self._auth = auth or AuthSnapshot()
        self._status = UpstreamStatus()
        self._cemm: UpstreamHealth | None = None
        # Set when the proxy has news the upstream monitor acts on at once (a port began
        # to fail, the target was withdrawn); the monitor waits on it between its checks.
        self.cemm_news = asyncio.Event()
        # Counted in memory; the views below are what readers get.
        self._denials: Counter[str] = Counter()
        self._requests: Counter[str] = Counter()
        # When each session / API token was last used, written in batches by the recorder.
        self._session_activity: dict[str, float] = {}
        self._token_activity: dict[str, float] = {}
        self.denials: Mapping[str, int] = MappingProxyType(self._denials)
        self.requests: Mapping[str, int] = MappingProxyType(self._requests)
        self.session_activity: Mapping[str, float] = MappingProxyType(self._session_activity)
        self.token_activity: Mapping[str, float] = MappingProxyType(self._token_activity)

    # -- reads ------------------------------------------------------------------------
    @property
    def policy(self) -> PolicySnapshot:
        return self._policy

    @property
    def upstream(self) -> UpstreamTarget:
        return self._upstream

    @property
    def limits(self) -> Limits:
        return self._limits

    @property
    def access(self) -> AccessConfig:
        return self._access

    @property
    def auth(self) -> AuthSnapshot:
        return self._auth

    @property
    def status(self) -> UpstreamStatus:
        return self._status

    @property
    def cemm(self) -> UpstreamHealth | None:
        """The upstream monitor's report (health, identity, clock drift); None without one."""
        return self._cemm

    def listener_for_spec(self, spec: str) -> Listener | None:
        return self.listeners.get(spec)

    def vouched(self, presented: str) -> bool:
        """Whether a request to the web app came through the proxy: ``presented``, its
        :data:`INTERNAL_HEADER`, is this gateway's secret (compared in constant time)."""
        return hmac.compare_digest(presented.encode(), self.internal_secret.encode())

    # -- snapshots, swapped by the app's tasks ----------------------------------------
    def set_policy(self, policy: PolicySnapshot) -> None:
        self._policy = policy

    def add_listeners(self, listeners: Sequence[Listener]) -> None:
        """Listeners started while running (the WireGuard tunnel's, turned on later)."""
        self.listeners = MappingProxyType(
            {**self.listeners, **{listener.mode_spec: listener for listener in listeners}}
        )

    def set_access(self, access: AccessConfig) -> None:
        self._access = access

    def set_limits(self, limits: Limits) -> None:
        self._limits = limits

    def set_auth(self, auth: AuthSnapshot) -> None:
        self._auth = auth

    def add_session(self, token_hash: str, info: SessionInfo) -> None:
        """A login: its session is usable from the next request on."""
        self._auth = _with_session(self._auth, token_hash, info)

    def remove_sessions(self, session_ids: Collection[str]) -> None:
        """A logout or revoke: the sessions admit nothing from the next request on."""
        self._auth = _without_sessions(self._auth, session_ids)

    # -- the CEMM, written by the upstream monitor and the upstream addons ------------
    def set_cemm(self, health: UpstreamHealth | None) -> None:
        self._cemm = health

    def set_upstream_host(self, host: str) -> None:
        """Forward to ``host`` from now on; ``""`` forwards nothing."""
        if host != self._upstream.host:
            self._upstream = dataclasses.replace(self._upstream, host=host)
            if not host:
                self.cemm_news.set()

    def set_upstream_mac(self, mac: str) -> None:
        if mac != self._upstream.mac:
            self._upstream = dataclasses.replace(self._upstream, mac=mac)

    def port_ok(self, port: int, now: float) -> None:
        self._set_port(port, PortStatus(last_ok=now, failing_since=None))

    def port_failed(self, port: int, now: float) -> None:
        current = self._status.ports.get(port) or PortStatus()
        if current.failing_since is None:
            self._set_port(port, dataclasses.replace(current, failing_since=now))
            self.cemm_news.set()

    def forget_ports(self) -> None:
        """What was seen at an old address says nothing about a new one."""
        self._status = UpstreamStatus()

    def _set_port(self, port: int, status: PortStatus) -> None:
        self._status = UpstreamStatus(MappingProxyType({**self._status.ports, port: status}))

    # -- counters and activity, reported by the addons and the web app ----------------
    def count_denial(self, reason: str) -> None:
        self._denials[reason] += 1

    def count_request(self, kind: str) -> None:
        self._requests[kind] += 1

    def touch_session(self, session_id: str, now: float) -> None:
        self._session_activity[session_id] = now

    def touch_token(self, token_id: str, now: float) -> None:
        self._token_activity[token_id] = now

    def take_activity(self) -> tuple[dict[str, float], dict[str, float]]:
        """The activity counted since the last take (sessions, tokens), for writing."""
        sessions, tokens = dict(self._session_activity), dict(self._token_activity)
        self._session_activity.clear()
        self._token_activity.clear()
        return sessions, tokens

    def keep_activity(self, sessions: Mapping[str, float], tokens: Mapping[str, float]) -> None:
        """Put back activity that could not be written; newer times counted meanwhile win."""
        for session_id, seen in sessions.items():
            self._session_activity[session_id] = max(
                seen, self._session_activity.get(session_id, 0.0)
            )
        for token_id, seen in tokens.items():
            self._token_activity[token_id] = max(seen, self._token_activity.get(token_id, 0.0))
