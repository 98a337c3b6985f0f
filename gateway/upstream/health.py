"""One health check of the CEMM, the clock drift estimate, and the report everyone reads.

The check
---------
- **Web port**: ``GET /api/v1/public/cemm`` (the public API, no key). It proves the port
  answers, gives the response time, and carries what identifies the device (``mac``) and
  its clock (``time``, whole epoch seconds). A fresh connection each time (no keep-alive):
  an old connection could still reach the address the CEMM just left, and the response
  time should include the connect.
- **WebSocket port**: an opening handshake (``ws://<address>:<ws_port>/``), closed at once.
  The live-data path is not documented; any HTTP answer to the upgrade means the port
  answers, ``101`` means a full handshake.
- Neither uses proxies from the environment: the CEMM is on the LAN.

Clock drift
-----------
The CEMM reports ``time`` truncated to whole seconds, so its clock at the moment it
answered lies in ``[time, time + 1)``; ``time + 0.5`` is the estimate. The gateway does not
know when within the round trip the CEMM read its clock, so it takes the midpoint of
sending and receiving (on the injectable :class:`~gateway.clock.Clock`)::

    drift = (time + 0.5) - (sent_at + received_at) / 2

The error of one check is at most 0.5 s plus half the round trip, a few milliseconds on
a LAN; positive means the CEMM runs ahead. Each check also bounds the drift to an interval
(:func:`drift_bounds`: ``(time - received_at, time + 1 - sent_at)``, 1 s plus the round trip
wide), and :class:`DriftEstimator` intersects the intervals of the recent checks: as they
fall at different points of the CEMM's second, the intersection narrows to well under
0.1 s within a few checks. An empty intersection (the CEMM's clock was set) starts over.

:class:`DriftWatch` turns the series into episodes: a warning when ``|drift|`` rises above
the threshold, and an all-clear only once it is back below 90 % of it, so a drift hovering
around the threshold does not warn on every check.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from websockets.asyncio.client import connect as websocket_connect
from websockets.exceptions import InvalidStatus

from gateway.clock import SYSTEM_CLOCK, Clock

# httpx imports its command-line tool (``httpx._main``, with click, rich and pygments: about
# 3 MB) whenever rich is installed, as it is beside development tools; the gateway never
# runs it. An entry of None makes that import fail, and httpx then defines the stand-in it
# defines where rich is absent (the container image).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import httpx  # noqa: E402

IDENTITY_PATH = "/api/v1/public/cemm"
USER_AGENT = "cemm-gateway-monitor"
_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}")
# The gateway reads at most this much of the identity document (it is ~300 bytes).
MAX_IDENTITY_BYTES = 65536


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One certificate-checking context for every check.

    The checks are plain HTTP, yet httpx builds a context (loading the CA bundle, ~30 ms
    during which the event loop, and so every proxied connection, waits) for each client
    it creates unless it is handed one.
    """
    return ssl.create_default_context()


def parse_mac(text: object) -> str | None:
    """``text`` as the CEMM shows a MAC (upper case, colons), or None if it is not one."""
    if not isinstance(text, str):
        return None
    candidate = text.strip()
    if not _MAC_RE.fullmatch(candidate):
        return None
    return candidate.replace("-", ":").upper()


@dataclass(frozen=True)
class Identity:
    """What ``/api/v1/public/cemm`` says about the device."""

    mac: str | None
    device_time: int | None
    local_ip: str | None = None
    name: str | None = None
    version: str | None = None


def parse_identity(document: object) -> Identity | None:
    """The identity in a decoded JSON document, or None if it is not the CEMM's shape."""
    if not isinstance(document, dict):
        return None
    device_time = document.get("time")
    if isinstance(device_time, bool) or not isinstance(device_time, int | float):
        device_time = None

    def text(key: str) -> str | None:
        value = document.get(key)
        return value[:200] if isinstance(value, str) else None

    return Identity(
        mac=parse_mac(document.get("mac")),
        device_time=int(device_time) if device_time is not None else None,
        local_ip=text("local_ip"),
        name=text("name"),
        version=text("version"),
    )


def estimate_drift(device_time: int, sent_at: float, received_at: float) -> float:
    """Seconds the CEMM's clock is ahead of the gateway's (negative: behind)."""
    return (device_time + 0.5) - (sent_at + received_at) / 2


def drift_bounds(device_time: int, sent_at: float, received_at: float) -> tuple[float, float]:
    """The interval the drift must lie in, given one truncated reading and its round trip."""
    return device_time - received_at, device_time + 1 - sent_at


class DriftEstimator:
    """The drift from the intersection of the recent checks' intervals (see module doc)."""

    def __init__(self, window: int = 8) -> None:
        self.window = window
        self._bounds: list[tuple[float, float]] = []

    def add(self, bounds: tuple[float, float]) -> float:
        self._bounds = [*self._bounds[-(self.window - 1) :], bounds]
        low = max(b[0] for b in self._bounds)
        high = min(b[1] for b in self._bounds)
        if low > high:  # inconsistent: the CEMM's clock changed; trust the newest alone
            self._bounds = [bounds]
            low, high = bounds
        return (low + high) / 2

    def reset(self) -> None:
        self._bounds.clear()


@dataclass(frozen=True)
class ApiCheck:
    """One ``GET /api/v1/public/cemm`` at one address."""

    address: str
    answered: bool
    """An HTTP response came back (any status)."""
    status: int | None = None
    response_time: float | None = None
    identity: Identity | None = None
    drift: float | None = None
    error: str | None = None
    drift_bounds: tuple[float, float] | None = None

    @property
    def ok(self) -> bool:
        """The public API answered with the CEMM's document."""
        return self.status == 200 and self.identity is not None

    def confirms(self, mac: str) -> bool:
        return self.ok and self.identity is not None and self.identity.mac == mac


@dataclass(frozen=True)
class PortCheck:
    """One check of one port (the WebSocket handshake)."""

    address: str
    answered: bool
    handshake: bool = False
    response_time: float | None = None
    error: str | None = None


def _describe_error(error: BaseException) -> str:
    if isinstance(error, httpx.ConnectTimeout | TimeoutError | asyncio.TimeoutError):
        return "no answer (timed out)"
    if isinstance(error, httpx.ReadTimeout):
        return "connected, but no response (timed out)"
    if isinstance(error, httpx.ConnectError | ConnectionRefusedError):
        return "connection refused or unreachable"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return type(error).__name__


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


class HealthChecker:
    """The real checks over the network (tests inject a fake with the same two methods)."""

    def __init__(
        self,
        *,
        http_port: int,
        ws_port: int,
        timeout: float,
        clock: Clock = SYSTEM_CLOCK,
        monotonic: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http_port = http_port
        self.ws_port = ws_port
        self.timeout = timeout
        self.clock = clock
        self.monotonic = monotonic
        self._transport = transport

    async def check_api(self, address: str) -> ApiCheck:
        url = f"http://{_url_host(address)}:{self.http_port}{IDENTITY_PATH}"
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json", "Connection": "close"}
        async with httpx.AsyncClient(
            trust_env=False,
            verify=_tls_context(),
            timeout=self.timeout,
            follow_redirects=False,
            transport=self._transport,
        ) as client:
            started = self.monotonic()
            sent_at = self.clock.now()
            try:
                async with client.stream("GET", url, headers=headers) as response:
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_IDENTITY_BYTES:
                            break
            except httpx.HTTPError as error:
                return ApiCheck(address, answered=False, error=_describe_error(error))
            received_at = self.clock.now()
            elapsed = self.monotonic() - started
        identity = None
        if response.status_code == 200 and len(body) <= MAX_IDENTITY_BYTES:
            try:
                identity = parse_identity(json.loads(body))
            except ValueError:
                identity = None
        drift = bounds = None
        if identity is not None and identity.device_time is not None:
            drift = estimate_drift(identity.device_time, sent_at, received_at)
            bounds = drift_bounds(identity.device_time, sent_at, received_at)
        problem = None
        if response.status_code != 200:
            problem = f"answered HTTP {response.status_code}"
        elif identity is None:
            problem = "answered, but not with the CEMM's device document"
        return ApiCheck(
            address,
            answered=True,
            status=response.status_code,
            response_time=elapsed,
            identity=identity,
            drift=drift,
            error=problem,
            drift_bounds=bounds,
        )

    async def check_websocket(self, address: str) -> PortCheck:
        uri = f"ws://{_url_host(address)}:{self.ws_port}/"
        started = self.monotonic()
        try:
            async with websocket_connect(
                uri,
                open_timeout=self.timeout,
                close_timeout=1,
                proxy=None,
                compression=None,
                user_agent_header=USER_AGENT,
                ping_interval=None,
            ):
                elapsed = self.monotonic() - started
            return PortCheck(address, answered=True, handshake=True, response_time=elapsed)
        except InvalidStatus as error:
            # The port answered HTTP, but not with a WebSocket: it is up, the path is not.
            return PortCheck(
                address,
                answered=True,
                response_time=self.monotonic() - started,
                error=f"answered HTTP {error.response.status_code} to the WebSocket handshake",
            )
        except Exception as error:
            return PortCheck(address, answered=False, error=_describe_error(error))


class DriftWatch:
    """Clock-drift episodes: ``"began"`` once above the threshold, ``"ended"`` once back."""

    def __init__(self, threshold: float, *, hysteresis: float = 0.1) -> None:
        self.threshold = threshold
        self._clear_below = threshold * (1 - hysteresis)
        self.warning = False
        self.drift: float | None = None

    def update(self, drift: float) -> Literal["began", "ended"] | None:
        self.drift = drift
        if not self.warning and abs(drift) > self.threshold:
            self.warning = True
            return "began"
        if self.warning and abs(drift) <= self._clear_below:
            self.warning = False
            return "ended"
        return None


def _clock_text(timestamp: float) -> str:
    return time.strftime("%H:%M", time.localtime(timestamp))


@dataclass
class PortHealth:
    """What the monitor's checks have seen of one CEMM port."""

    port: int
    up: bool | None = None
    """None: not checked yet."""
    response_time: float | None = None
    last_ok: float | None = None
    failing_since: float | None = None
    error: str | None = None
    checked_at: float | None = None

    def record(
        self, *, ok: bool, now: float, response_time: float | None, error: str | None
    ) -> None:
        self.up = ok
        self.checked_at = now
        self.error = error
        self.response_time = response_time if ok else None
        if ok:
            self.last_ok = now
            self.failing_since = None
        elif self.failing_since is None:
            self.failing_since = now

    def forget(self) -> None:
        """A new address: what was seen at the old one no longer applies."""
        self.up = self.response_time = self.failing_since = self.error = None
        self.checked_at = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "up": self.up,
            "response_time": self.response_time,
            "last_ok": self.last_ok,
            "failing_since": self.failing_since,
            "error": self.error,
        }


@dataclass
class UpstreamHealth:
    """The monitor's report: plain data, mutated only by the monitor, read by everyone."""

    http: PortHealth
    ws: PortHealth
    mac: str = ""
    """The configured MAC; empty when the CEMM is known by address only."""
    address: str | None = None
    """Where the proxy forwards now; None while the CEMM is not confirmed (or not found)."""
    last_address: str | None = None
    """Where the CEMM was last confirmed (kept while it is being looked for)."""
    lost_since: float | None = None
    lost_reason: str | None = None
    reported_mac: str | None = None
    confirmed_at: float | None = None
    searching: bool = False
    address_changes: int = 0
    last_change_at: float | None = None
    foreign_device: tuple[str, str] | None = None
    """(address, MAC) of a device that answered where the CEMM was expected."""
    clock_drift: float | None = None
    clock_drift_threshold: float = 30.0
    clock_drift_warning: bool = False
    checks: int = 0
    checked_at: float | None = None
    identity: dict[str, Any] = field(default_factory=dict)

    @property
    def follows_mac(self) -> bool:
        return bool(self.mac)

    def warnings(self) -> list[str]:
        """Plain-language warnings for the dashboard."""
        found: list[str] = []
        if self.clock_drift_warning and self.clock_drift is not None:
            direction = "ahead of" if self.clock_drift > 0 else "behind"
            found.append(
                f"The CEMM's clock is {abs(self.clock_drift):.0f} s {direction} the gateway's "
                f"(more than {self.clock_drift_threshold:g} s). A wrong clock can lose data: "
                "check the CEMM's time server (NTP) settings."
            )
        if self.follows_mac and self.address is None:
            found.append(self.unavailable_text())
        else:
            for port in (self.http, self.ws):
                if port.failing_since is not None:
                    found.append(self.failing_text(port.port, port.failing_since))
        return found

    def failing_text(self, port: int, since: float) -> str:
        where = f" at {self.address}" if self.address else ""
        return f"The CEMM{where} has not answered on port {port} since {_clock_text(since)}."

    def unavailable_text(self) -> str:
        """Why nothing is forwarded while following by MAC (the 503 page)."""
        if self.foreign_device is not None:
            address, mac = self.foreign_device
            text = (
                f"A different device (MAC {mac}) answers at {address}, where the CEMM "
                f"(MAC {self.mac}) was; the gateway sends it nothing and is looking for the CEMM."
            )
        elif self.last_address is not None:
            since = f" since {_clock_text(self.lost_since)}" if self.lost_since else ""
            text = (
                f"The CEMM (MAC {self.mac}) has not answered at {self.last_address}{since}; "
                "the gateway is looking for it on the network."
            )
        else:
            text = f"The gateway has not found the CEMM (MAC {self.mac}) on the network yet."
        return text + " The page will work again as soon as the CEMM is found."

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "mac": self.mac or None,
            "reported_mac": self.reported_mac,
            "confirmed": self.address is not None
            and (not self.follows_mac or self.confirmed_at is not None),
            "confirmed_at": self.confirmed_at,
            "searching": self.searching,
            "last_address": self.last_address,
            "lost_since": self.lost_since,
            "lost_reason": self.lost_reason,
            "address_changes": self.address_changes,
            "last_change_at": self.last_change_at,
            "ports": {"http": self.http.as_dict(), "ws": self.ws.as_dict()},
            "clock_drift": {
                "seconds": self.clock_drift,
                "threshold": self.clock_drift_threshold,
                "warning": self.clock_drift_warning,
            },
            "checked_at": self.checked_at,
            "warnings": self.warnings(),
        }
