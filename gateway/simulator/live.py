"""The live-data WebSocket: what a client gets after connecting, and the port-8090 server.

Per connection (:func:`run_live_session`):

* a reading ``{"type": "reading", "seq": N, "time": ..., "power_w": ..., "channels": {...}}``
  is sent at once, then every ``interval`` seconds; ``seq`` counts from 0 per connection;
* every text or binary message from the client is echoed back unchanged, byte for byte,
  except these text commands (JSON objects with a ``cmd`` key):

  - ``{"cmd": "burst", "count": N}`` sends ``{"type": "burst", "seq": i}`` for i in 0..N-1
    as fast as the connection takes them (optional ``"pad": B`` adds B filler characters);
  - ``{"cmd": "close", "code": C, "reason": R}`` closes the connection with that code;
  - ``{"cmd": "readings", "enabled": false}`` pauses the readings (``true`` resumes), so a
    test can watch a quiet stream;

  a malformed or unknown command is answered with ``{"type": "error", "error": ...}``.

The same session runs behind two front ends: the ``websockets`` server on the WebSocket port
(:class:`LiveServer`, any path accepted, like an undocumented device would) and the web
port's same-origin route (``gateway.simulator.web``). Each connection runs in its own task,
so a slow or broken client only ever stalls itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from http import HTTPStatus
from typing import Any, Final, Protocol
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from gateway.simulator.device import Device
from gateway.simulator.traffic import RecordedRequest, header_pairs

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
"""Largest message accepted from a client (the same on both ports)."""
MAX_BURST: Final = 1_000_000
MAX_PAD: Final = 1024 * 1024
BURST_YIELD_EVERY: Final = 64
CLOSE_TIMEOUT: Final = 1.0
"""Seconds to wait for a client to answer our close frame; short, so stopping is quick."""


class ChannelClosed(Exception):
    """The client went away while we were sending."""


class LiveChannel(Protocol):
    """The little a session needs from a WebSocket library."""

    async def send(self, message: str | bytes) -> None:
        """Send one message; raise :class:`ChannelClosed` if the connection is gone."""
        ...

    async def receive(self) -> str | bytes | None:
        """The next message, or None once the connection is closed."""
        ...

    async def close(self, code: int, reason: str) -> None: ...


def close_code_problem(code: object) -> str | None:
    """Why ``code`` cannot be sent in a close frame (RFC 6455 section 7.4), or None if it can."""
    if not isinstance(code, int) or isinstance(code, bool):
        return f"close code {code!r} is not an integer"
    if code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999:
        return None
    return f"close code {code} cannot be sent; use 1000-1003, 1007-1014 or 3000-4999"


class _Session:
    """One client's connection: readings out, echoes and commands in."""

    def __init__(self, channel: LiveChannel, device: Device) -> None:
        self._channel = channel
        self._device = device
        # Readings and replies come from two tasks; one lock keeps whole messages in order.
        self._send_lock = asyncio.Lock()
        self._readings_enabled = asyncio.Event()
        self._readings_enabled.set()

    async def send(self, message: str | bytes) -> None:
        async with self._send_lock:
            await self._channel.send(message)

    async def send_json(self, document: dict[str, Any]) -> None:
        await self.send(json.dumps(document, separators=(",", ":"), ensure_ascii=False))

    async def run(self) -> None:
        readings = asyncio.create_task(self._send_readings())
        try:
            await self._serve_client()
        except ChannelClosed:
            pass
        finally:
            readings.cancel()
            # wait() neither raises the task's exception nor swallows our own cancellation.
            await asyncio.wait([readings])
            if not readings.cancelled() and (error := readings.exception()) is not None:
                logger.error("live readings failed", exc_info=error)

    async def _send_readings(self) -> None:
        loop = asyncio.get_running_loop()
        seq = 0
        due = loop.time()
        try:
            while True:
                if not self._readings_enabled.is_set():
                    await self._readings_enabled.wait()
                    due = loop.time()
                await self.send_json(self._device.reading(seq))
                seq += 1
                # Fixed schedule so readings do not drift; a client that fell behind gets
                # the next one at once instead of a catch-up burst.
                due = max(due + self._device.config.interval, loop.time())
                await asyncio.sleep(due - loop.time())
        except ChannelClosed:
            return

    async def _serve_client(self) -> None:
        while (message := await self._channel.receive()) is not None:
            self._device.traffic.ws_messages_received += 1
            command = _parse_command(message)
            if command is None:
                await self.send(message)
            elif not await self._run_command(command):
                return

    async def _run_command(self, command: dict[str, Any]) -> bool:
        """Carry out ``command``; False when the connection is closed by it."""
        name = command["cmd"]
        if name == "burst":
            count = _int_in(command.get("count"), 0, MAX_BURST)
            pad = _int_in(command.get("pad", 0), 0, MAX_PAD)
            if count is None or pad is None:
                await self._error(
                    f"burst needs 0 <= count <= {MAX_BURST} and 0 <= pad <= {MAX_PAD}, "
                    'for example {"cmd":"burst","count":1000}'
                )
                return True
            filler = {"pad": "x" * pad} if pad else {}
            for seq in range(count):
                await self.send_json({"type": "burst", "seq": seq, **filler})
                if seq % BURST_YIELD_EVERY == BURST_YIELD_EVERY - 1:
                    # A send only yields once the socket buffers are full, which a fast
                    # reader never lets happen; let other connections run meanwhile.
                    await asyncio.sleep(0)
            return True
        if name == "close":
            code, reason = command.get("code", 1000), command.get("reason", "")
            problem = close_code_problem(code)
            if problem is None and not isinstance(reason, str):
                problem = f"close reason {reason!r} is not a string"
            elif problem is None and len(reason.encode()) > 123:
                problem = "close reason is longer than 123 bytes"
            if problem is not None:
                await self._error(problem)
                return True
            async with self._send_lock:
                await self._channel.close(code, reason)
            return False
        if name == "readings":
            enabled = command.get("enabled")
            if not isinstance(enabled, bool):
                await self._error('readings needs "enabled": true or false')
            elif enabled:
                self._readings_enabled.set()
            else:
                self._readings_enabled.clear()
            return True
        await self._error(f"unknown command {name!r}; known: burst, close, readings")
        return True

    async def _error(self, text: str) -> None:
        await self.send_json({"type": "error", "error": text})


def _int_in(value: object, low: int, high: int) -> int | None:
    """``value`` if it is an integer from ``low`` to ``high``, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    return None


def _parse_command(message: str | bytes) -> dict[str, Any] | None:
    """The command in ``message``, or None when it is plain data to echo."""
    if not isinstance(message, str) or not message.startswith("{") or '"cmd"' not in message:
        return None
    try:
        document = json.loads(message)
    except ValueError:
        return None
    if isinstance(document, dict) and "cmd" in document:
        return document
    return None


async def run_live_session(channel: LiveChannel, device: Device) -> None:
    """Serve one accepted WebSocket connection until it closes."""
    traffic = device.traffic
    traffic.ws_connection_count += 1
    traffic.ws_open_connections += 1
    try:
        await _Session(channel, device).run()
    finally:
        traffic.ws_open_connections -= 1


class _WebsocketsChannel:
    """:class:`LiveChannel` over a ``websockets`` server connection."""

    def __init__(self, connection: ServerConnection) -> None:
        self._connection = connection

    async def send(self, message: str | bytes) -> None:
        try:
            await self._connection.send(message)
        except ConnectionClosed as closed:
            raise ChannelClosed from closed

    async def receive(self) -> str | bytes | None:
        try:
            return await self._connection.recv()
        except ConnectionClosed:
            return None

    async def close(self, code: int, reason: str) -> None:
        await self._connection.close(code, reason)


def _format_address(address: Any) -> str | None:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return None


class LiveServer:
    """The WebSocket port: a ``websockets`` server running :func:`run_live_session`."""

    def __init__(self, device: Device) -> None:
        self._device = device
        self._server: Server | None = None
        # Kept so stop() can drop clients that stopped reading: websockets' own close
        # waits for their send buffer to drain, which they would never let happen.
        self._connections: set[ServerConnection] = set()

    async def start(self, sock: socket.socket) -> None:
        """Serve on the already bound, listening ``sock``."""
        self._server = await serve(
            self._handle,
            sock=sock,
            process_request=self._process_request,
            max_size=MAX_MESSAGE_BYTES,
            close_timeout=CLOSE_TIMEOUT,
            server_header="CEMM-simulator",
        )

    async def stop(self) -> None:
        """Close the port and every connection (code 1001), within about CLOSE_TIMEOUT."""
        if self._server is None:
            return
        self._server.close()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT + 0.2):
                await self._server.wait_closed()
        except TimeoutError:
            for connection in list(self._connections):
                connection.transport.abort()
            await self._server.wait_closed()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        device = self._device
        target = urlsplit(request.path)
        upgrade = request.headers.get("Upgrade", "")
        wants_websocket = "websocket" in upgrade.lower()
        device.traffic.record(
            RecordedRequest(
                port="ws",
                # Older websockets releases only parse GET and have no ``method``.
                method=getattr(request, "method", "GET"),
                path=unquote(target.path),
                query=target.query,
                headers=header_pairs(request.headers.raw_items()),
                client=_format_address(connection.remote_address),
                websocket=wants_websocket,
            )
        )
        if wants_websocket:
            return None
        # A browser or curl pointed at the port gets a hint instead of a handshake error.
        response = connection.respond(
            HTTPStatus.UPGRADE_REQUIRED,
            "This is the CEMM live-data port; it only speaks WebSocket "
            f"(for example ws://<host>:<port>{device.config.ws_path}).\n",
        )
        response.headers["Upgrade"] = "websocket"
        return response

    async def _handle(self, connection: ServerConnection) -> None:
        self._connections.add(connection)
        try:
            await run_live_session(_WebsocketsChannel(connection), self._device)
        finally:
            self._connections.discard(connection)
