"""Command line for the simulator: ``python -m gateway.simulator`` and ``cemm-gateway``.

The main CLI adds :func:`add_arguments` to its own sub-command and hands the parsed
arguments to :func:`run_from_args`; ``__main__`` does the same with a parser of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable

from gateway.simulator.config import (
    DEFAULT_HOST,
    DEFAULT_HTTP_PORT,
    DEFAULT_INTERVAL,
    DEFAULT_MAC,
    DEFAULT_WS_PATH,
    DEFAULT_WS_PORT,
    PAGE_MODES,
    SimulatorConfig,
    check_clock_skew,
    check_port,
    check_ws_path,
    normalize_mac,
)
from gateway.simulator.server import SimulatorStartError, start_simulator


def _argument_type[T](check: Callable[[str], T]) -> Callable[[str], T]:
    """Turn a checker raising ValueError into an argparse type with the checker's message."""

    def convert(text: str) -> T:
        try:
            return check(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = check.__name__
    return convert


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a port number; use 1-65535, or 0 for a free port"
        ) from None
    return check_port(port, "port")


def _page_port(text: str) -> int:
    port = _port(text)
    if port == 0:
        raise ValueError("the page cannot dial port 0; give the port clients connect to")
    return port


def _seconds(text: str) -> float:
    try:
        return check_clock_skew(float(text))
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds, for example 3600 or -90") from None


def _interval(text: str) -> float:
    seconds = _seconds(text)
    if seconds <= 0:
        raise ValueError(f"the interval must be more than 0 seconds, got {text}")
    return seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to ``parser`` (all optional; defaults mimic a real CEMM)."""
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--http-port",
        type=_argument_type(_port),
        default=DEFAULT_HTTP_PORT,
        metavar="P",
        help=f"web site port, the real CEMM's 80 (default {DEFAULT_HTTP_PORT}; 0 = free port)",
    )
    parser.add_argument(
        "--ws-port",
        type=_argument_type(_port),
        default=DEFAULT_WS_PORT,
        metavar="Q",
        help=f"live-data WebSocket port (default {DEFAULT_WS_PORT}; 0 = free port)",
    )
    parser.add_argument(
        "--mac",
        type=_argument_type(normalize_mac),
        default=DEFAULT_MAC,
        metavar="M",
        help=f"the device's MAC address, as /api/v1/public/cemm reports it (default {DEFAULT_MAC})",
    )
    parser.add_argument(
        "--clock-skew",
        type=_argument_type(_seconds),
        default=0.0,
        metavar="SECONDS",
        help="seconds the device clock runs ahead of the real one; negative = behind (default 0)",
    )
    parser.add_argument(
        "--page-ws-port",
        type=_argument_type(_page_port),
        default=None,
        metavar="N",
        help="port the page's script dials for live data, e.g. a gateway's "
        "(default: the simulator's own WebSocket port)",
    )
    parser.add_argument(
        "--page-mode",
        choices=PAGE_MODES,
        default="hostname-port",
        help="how the page finds the WebSocket: ws://<page host>:<port> like the real CEMM "
        "(hostname-port), the same but wss: under HTTPS (protocol-aware), or the page's own "
        "origin (same-origin); a ?ws=<mode> query overrides it in the browser",
    )
    parser.add_argument(
        "--ws-path",
        type=_argument_type(check_ws_path),
        default=DEFAULT_WS_PATH,
        metavar="PATH",
        help=f"path the page's script dials (default {DEFAULT_WS_PATH}; the WebSocket port "
        "accepts any path)",
    )
    parser.add_argument(
        "--interval",
        type=_argument_type(_interval),
        default=DEFAULT_INTERVAL,
        metavar="SECONDS",
        help=f"seconds between live readings (default {DEFAULT_INTERVAL:g})",
    )
    parser.add_argument(
        "--csp",
        metavar="POLICY",
        help="send this Content-Security-Policy with the page (default: none)",
    )


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    return SimulatorConfig(
        host=args.host,
        http_port=args.http_port,
        ws_port=args.ws_port,
        mac=args.mac,
        clock_skew=args.clock_skew,
        page_ws_port=args.page_ws_port,
        page_mode=args.page_mode,
        ws_path=args.ws_path,
        interval=args.interval,
        csp=args.csp,
    )


async def _serve_until_signalled(config: SimulatorConfig) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not possible outside the main thread; then the caller stops us by cancelling.
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        simulator = await start_simulator(config)
    except SimulatorStartError as error:
        print(f"cemm simulator: {error.strerror}", file=sys.stderr)
        return 1
    try:
        print(simulator.ready_line(), flush=True)
        await stop.wait()
    finally:
        await simulator.stop()
    return 0


def run_from_args(args: argparse.Namespace) -> int:
    """Run the simulator until SIGINT or SIGTERM; the process exit code (0 when stopped)."""
    try:
        config = config_from_args(args)
    except ValueError as error:
        print(f"cemm simulator: {error}", file=sys.stderr)
        return 2
    return asyncio.run(_serve_until_signalled(config))
