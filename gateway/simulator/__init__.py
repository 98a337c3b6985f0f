"""A simulated CEMM: the device the gateway protects, for the demo and for every test.

It behaves as the vendor documents the real module (cemm.md): a single-page web site with
client-side routes and the public JSON API on the web port (real device: 80), live readings
about once a second on a WebSocket port (real device: 8090), a device clock that can be
skewed, a settable MAC, and three ways for the page's script to find the WebSocket. It
stands in for a separate device on the LAN, so nothing here imports the rest of
``gateway``.

Use from Python (tests, the demo)::

    simulator = await start_simulator(SimulatorConfig(http_port=0, ws_port=0))
    ...  # simulator.http_port, simulator.ws_port, simulator.requests, ...
    await simulator.stop()

or from a shell: ``python -m gateway.simulator --http-port 0 --ws-port 0``.

Modules: ``config`` (settings), ``device`` (clock, API documents, readings), ``web`` (the
web port, including the ``/_sim/`` helpers for proxy tests), ``live`` (the WebSocket
session and the WebSocket port), ``traffic`` (what reached the device), ``server``
(start/stop), ``cli`` (arguments). ``static/`` holds the page.
"""

from gateway.simulator.cli import add_arguments, config_from_args, run_from_args
from gateway.simulator.config import PAGE_MODES, PageMode, SimulatorConfig, normalize_mac
from gateway.simulator.server import Simulator, SimulatorStartError, start_simulator
from gateway.simulator.traffic import RecordedRequest

__all__ = [
    "PAGE_MODES",
    "PageMode",
    "RecordedRequest",
    "Simulator",
    "SimulatorConfig",
    "SimulatorStartError",
    "add_arguments",
    "config_from_args",
    "normalize_mac",
    "run_from_args",
    "start_simulator",
]
