"""Settings of one simulated CEMM, and the checks that keep them sane.

:class:`SimulatorConfig` is the single settings object: the CLI builds it from arguments,
tests and the demo build it directly. ``mac`` and ``clock_skew`` may be changed while the
simulator runs (through :class:`~gateway.simulator.server.Simulator`), everything else is
read once at start.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

PageMode = Literal["hostname-port", "protocol-aware", "same-origin"]
"""How the page's script finds the WebSocket (see ``static/assets/app.js``)."""

PAGE_MODES: Final[tuple[PageMode, ...]] = get_args(PageMode)

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_HTTP_PORT: Final = 8080
DEFAULT_WS_PORT: Final = 8090
DEFAULT_MAC: Final = "80:1F:12:47:06:B0"
DEFAULT_WS_PATH: Final = "/ws"
DEFAULT_INTERVAL: Final = 1.0

_MAC_PATTERN: Final = re.compile(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}")


def normalize_mac(text: str) -> str:
    """Return ``text`` as the CEMM shows a MAC: six upper-case hex pairs joined by colons.

    Accepts colons or dashes (not mixed). Raises :class:`ValueError` with an example of the
    expected form otherwise.
    """
    candidate = text.strip()
    if not _MAC_PATTERN.fullmatch(candidate):
        raise ValueError(
            f"{text!r} is not a MAC address; expected six hex pairs, for example {DEFAULT_MAC}"
        )
    return candidate.replace("-", ":").upper()


def check_port(port: int, what: str) -> int:
    """Return ``port`` if it can be listened on (0 = let the OS pick), else raise ValueError."""
    if not 0 <= port <= 65535:
        raise ValueError(f"{what} {port} is out of range; use 1-65535, or 0 for a free port")
    return port


def check_clock_skew(seconds: float) -> float:
    """Return ``seconds`` if it is a finite number, else raise ValueError."""
    if not math.isfinite(seconds):
        raise ValueError(f"clock skew {seconds} must be a finite number of seconds")
    return seconds


def check_ws_path(path: str) -> str:
    """Return ``path`` if it is an absolute URL path without query, else raise ValueError."""
    if not path.startswith("/") or any(c in path for c in "?# \t\r\n"):
        raise ValueError(f"WebSocket path {path!r} must start with '/', for example /ws")
    return path


@dataclass
class SimulatorConfig:
    """Everything one simulated CEMM needs to know. Defaults match the real device."""

    host: str = DEFAULT_HOST
    http_port: int = DEFAULT_HTTP_PORT
    """The web site's port (the real CEMM: 80). 0 picks a free port."""
    ws_port: int = DEFAULT_WS_PORT
    """The live-data WebSocket port (the real CEMM: 8090). 0 picks a free port."""
    mac: str = DEFAULT_MAC
    clock_skew: float = 0.0
    """Seconds added to the real clock to get the device clock (negative = behind)."""
    page_ws_port: int | None = None
    """The port the page's script dials; None means the simulator's own WebSocket port.
    A gateway in front sets this to the port it listens on for WebSockets."""
    page_mode: PageMode = "hostname-port"
    ws_path: str = DEFAULT_WS_PATH
    """The path the page's script dials. The WebSocket port accepts any path."""
    interval: float = DEFAULT_INTERVAL
    """Seconds between live readings on each WebSocket connection."""
    csp: str | None = None
    """A Content-Security-Policy for the page, as a device might send one (tests use it to
    check that a proxy in front keeps the page working under a strict policy)."""
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)
    """The real clock the device clock is derived from; tests may inject their own."""

    def __post_init__(self) -> None:
        self.mac = normalize_mac(self.mac)
        check_clock_skew(self.clock_skew)
        check_port(self.http_port, "HTTP port")
        check_port(self.ws_port, "WebSocket port")
        if self.page_ws_port is not None and not 0 < self.page_ws_port <= 65535:
            raise ValueError(f"page WebSocket port {self.page_ws_port} must be 1-65535")
        check_ws_path(self.ws_path)
        if self.page_mode not in PAGE_MODES:
            raise ValueError(
                f"page mode {self.page_mode!r} is unknown; choose one of {', '.join(PAGE_MODES)}"
            )
        if not (self.interval > 0 and math.isfinite(self.interval)):
            raise ValueError(f"reading interval {self.interval} must be more than 0 seconds")
