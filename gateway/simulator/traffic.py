"""What reached the simulated device: a record tests read to prove what got through.

A gateway test typically denies a request and then asserts that the simulator never saw
it, so every HTTP request on the web port and every handshake on the WebSocket port is
recorded here before anything else happens to it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

PortName = Literal["http", "ws"]

RECENT_REQUESTS: int = 1000
"""How many requests :attr:`Traffic.requests` keeps; older ones are only counted."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the device received it."""

    port: PortName
    """``"http"``: the web port; ``"ws"``: the live-data WebSocket port."""
    method: str
    path: str
    """Percent-decoded path, without the query."""
    query: str
    headers: tuple[tuple[str, str], ...]
    """Header (lower-cased name, value) pairs in the order received, duplicates kept."""
    client: str | None
    """``host:port`` of the peer that connected to the device (the gateway, behind one)."""
    websocket: bool
    """True for a WebSocket opening handshake."""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)


def header_pairs(raw: Iterable[tuple[bytes | str, bytes | str]]) -> tuple[tuple[str, str], ...]:
    """Normalise headers from ASGI (bytes) or websockets (str) into lower-cased str pairs."""
    pairs: list[tuple[str, str]] = []
    for name, value in raw:
        text_name = name.decode("latin-1") if isinstance(name, bytes) else name
        text_value = value.decode("latin-1") if isinstance(value, bytes) else value
        pairs.append((text_name.lower(), text_value))
    return tuple(pairs)


@dataclass
class Traffic:
    """Counters and the most recent requests; mutated only from the event loop."""

    requests: deque[RecordedRequest] = field(default_factory=lambda: deque(maxlen=RECENT_REQUESTS))
    request_count: int = 0
    """HTTP requests on either port, WebSocket handshakes included."""
    ws_connection_count: int = 0
    """WebSocket connections accepted (both ports)."""
    ws_open_connections: int = 0
    ws_messages_received: int = 0
    """Data messages (text or binary) received from WebSocket clients, commands included."""

    def record(self, request: RecordedRequest) -> None:
        self.requests.append(request)
        self.request_count += 1

    def clear(self) -> None:
        """Forget everything seen so far (open connections stay counted as open)."""
        self.requests.clear()
        self.request_count = 0
        self.ws_connection_count = 0
        self.ws_messages_received = 0
