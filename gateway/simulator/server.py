"""Start and stop a simulated CEMM: both listening ports in the caller's event loop.

:func:`start_simulator` binds both ports first (so a busy port fails before anything
runs), then serves the web port with uvicorn and the WebSocket port with ``websockets``.
Signals are left to the caller: the CLI installs its own handlers, and a test or the demo
simply calls :meth:`Simulator.stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from types import TracebackType
from typing import Final

import uvicorn

from gateway.simulator.config import SimulatorConfig, check_clock_skew, normalize_mac
from gateway.simulator.device import Device
from gateway.simulator.live import MAX_MESSAGE_BYTES, LiveServer
from gateway.simulator.traffic import RecordedRequest, Traffic
from gateway.simulator.web import create_http_app

WEB_GRACE: Final = 0.5
"""Seconds open web connections get to finish when stopping before they are dropped."""
GRACEFUL_STOP: Final = 3
"""uvicorn's own last resort (cancelling responses) should the drop not end them."""


class SimulatorStartError(OSError):
    """A port could not be bound; the message names the port and what to do."""


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn that leaves signals to its owner and says when it accepts connections."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The stock server replaces SIGINT/SIGTERM handlers process-wide, which would take
        # Ctrl+C away from the gateway or the test runner that embeds us.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


def _bind(host: str, port: int, what: str, option: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family)
        # Like a device's TCP stack: answers are not held back for a delayed ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    except OSError as error:
        raise SimulatorStartError(
            error.errno,
            f"cannot listen for the {what} on {host}:{port}: {error.strerror or error}; "
            f"choose another {option} (0 picks a free port)",
        ) from error


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class Simulator:
    """A running simulated CEMM. Create it with :func:`start_simulator`."""

    def __init__(
        self,
        device: Device,
        web: _EmbeddedUvicorn,
        web_task: asyncio.Task[None],
        live: LiveServer,
    ) -> None:
        self._device = device
        self._web = web
        self._web_task = web_task
        self._live = live
        self._stopped = False

    @property
    def config(self) -> SimulatorConfig:
        return self._device.config

    @property
    def http_port(self) -> int:
        """The bound web port."""
        return self._device.http_port

    @property
    def ws_port(self) -> int:
        """The bound WebSocket port."""
        return self._device.ws_port

    @property
    def http_url(self) -> str:
        return f"http://{_url_host(self.config.host)}:{self.http_port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://{_url_host(self.config.host)}:{self.ws_port}{self.config.ws_path}"

    @property
    def mac(self) -> str:
        return self.config.mac

    @mac.setter
    def mac(self, value: str) -> None:
        self.config.mac = normalize_mac(value)

    @property
    def clock_skew(self) -> float:
        """Seconds the device clock runs ahead of the real one; takes effect at once."""
        return self.config.clock_skew

    @clock_skew.setter
    def clock_skew(self, seconds: float) -> None:
        self.config.clock_skew = check_clock_skew(seconds)

    def device_time(self) -> float:
        """The device clock now, as ``/api/v1/public/cemm`` reports it (before rounding)."""
        return self._device.now()

    # What reached the device - tests assert on these.

    @property
    def traffic(self) -> Traffic:
        return self._device.traffic

    @property
    def requests(self) -> list[RecordedRequest]:
        """The most recent requests on both ports, oldest first (WebSocket handshakes too)."""
        return list(self._device.traffic.requests)

    @property
    def request_count(self) -> int:
        """HTTP requests received on either port, WebSocket handshakes included."""
        return self._device.traffic.request_count

    @property
    def ws_connection_count(self) -> int:
        """WebSocket connections accepted, on either port."""
        return self._device.traffic.ws_connection_count

    @property
    def ws_open_connections(self) -> int:
        return self._device.traffic.ws_open_connections

    @property
    def ws_messages_received(self) -> int:
        """Text and binary messages received from WebSocket clients."""
        return self._device.traffic.ws_messages_received

    def clear_traffic(self) -> None:
        self._device.traffic.clear()

    def ready_line(self) -> str:
        """The line the CLI prints once both ports accept connections."""
        return f"CEMM simulator: {self.http_url} {self.ws_url} mac={self.mac}"

    async def stop(self) -> None:
        """Close both ports and every connection; returns when all tasks are done.

        Open WebSockets get close code 1001 (WebSocket port) or 1012 (web port).
        Idempotent.
        """
        if self._stopped:
            return
        self._stopped = True
        self._device.stopping.set()
        self._web.should_exit = True
        await asyncio.gather(self._live.stop(), self._stop_web())

    async def _stop_web(self) -> None:
        done, _ = await asyncio.wait([self._web_task], timeout=WEB_GRACE)
        if not done:
            # Clients that stopped reading would hold uvicorn until its own timeout, which
            # then cancels the responses with an error in the log. A device being switched
            # off just drops them.
            for connection in list(self._web.server_state.connections):
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    transport.abort()
        await self._web_task

    async def __aenter__(self) -> Simulator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


async def start_simulator(config: SimulatorConfig | None = None) -> Simulator:
    """Start a simulated CEMM in the running event loop; both ports accept on return.

    Raises :class:`SimulatorStartError` if a port cannot be bound.
    """
    config = config if config is not None else SimulatorConfig()
    http_sock = _bind(config.host, config.http_port, "web site", "--http-port")
    try:
        ws_sock = _bind(config.host, config.ws_port, "WebSocket", "--ws-port")
    except BaseException:
        http_sock.close()
        raise
    device = Device(
        config=config,
        http_port=http_sock.getsockname()[1],
        ws_port=ws_sock.getsockname()[1],
    )
    live = LiveServer(device)
    try:
        await live.start(ws_sock)
    except BaseException:
        http_sock.close()
        ws_sock.close()
        raise

    web = _EmbeddedUvicorn(
        uvicorn.Config(
            create_http_app(device),
            lifespan="off",
            # The loggers are process-wide: configuring them would change the embedding
            # gateway's logging, so leave them as the host process set them up.
            log_config=None,
            proxy_headers=False,  # the device must see the peer as it is, not X-Forwarded-For
            server_header=False,
            ws_max_size=MAX_MESSAGE_BYTES,
            timeout_graceful_shutdown=GRACEFUL_STOP,
        )
    )
    web_task = asyncio.create_task(web.serve(sockets=[http_sock]), name="cemm-simulator-web")
    simulator = Simulator(device, web, web_task, live)
    ready = asyncio.create_task(web.ready.wait())
    try:
        await asyncio.wait([ready, web_task], return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        # Cancelled while starting (perhaps just as uvicorn got ready): leave nothing behind.
        await _abandon(simulator, http_sock)
        raise
    finally:
        ready.cancel()
    if not web.ready.is_set():
        await _abandon(simulator, http_sock)  # re-raises uvicorn's error, if it had one
        raise SimulatorStartError("the web port stopped while starting; see the log")
    return simulator


async def _abandon(simulator: Simulator, http_sock: socket.socket) -> None:
    try:
        await simulator.stop()
    finally:
        http_sock.close()  # uvicorn closes it only if it got as far as listening
