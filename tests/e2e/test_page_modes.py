"""The CEMM's page in real Chromium, through the gateway: each of the simulator's three ways
of finding the live-data WebSocket, over HTTPS on one port and over plain HTTP with both
ports. The page must show a live reading within 3 s with no console errors (mixed
content, CSP violations, failed sockets).

The simulated CEMM listens on 127.0.0.2 and the browser opens the gateway on 127.0.0.1, so
a page that dials ``<its own host>:<CEMM port>`` reaches nothing unless the gateway makes
it work - as on a real LAN, where the CEMM is not the host the browser talks to. (Chromium
exempts loopback from mixed-content blocking, so the test also checks which socket URLs
the page really opened.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.browser import chromium
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread

PASSWORD = "correct-horse-battery-staple"
MODES = ["hostname-port", "protocol-aware", "same-origin"]
DEVICE = "127.0.0.2"
# A strict policy such as a device might send: it does not allow the device's own socket on
# another port, nor the gateway's tunnel; with one port the gateway widens it just enough.
STRICT_CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
# With both ports and no fix-up, the page's own policy must allow its socket on the other
# port, as a real device's would.
TWO_PORT_CSP = "default-src 'self'; connect-src 'self' ws:; img-src 'self' data:"


def _start(
    directory: Path, *, https: bool
) -> tuple[GatewayConfig, GatewayProcess, SimulatorThread]:
    config = GatewayConfig(
        directory, upstream_http_port=0, upstream_ws_port=0, upstream_host=DEVICE
    )
    if https:
        # One port only: the gateway's ws listener is off, and the page dials the CEMM's own
        # WebSocket port (as the real page dials 8090) - the fix-up must bring it home.
        simulator = SimulatorThread(host=DEVICE, csp=STRICT_CSP)
        config.ws_port = 0
        tls = "[tls]\nenabled = true\n"
    else:
        simulator = SimulatorThread(host=DEVICE, page_ws_port=config.ws_port, csp=TWO_PORT_CSP)
        tls = ""
    config.upstream_http_port, config.upstream_ws_port = simulator.http_port, simulator.ws_port
    config.extra = f'{tls}[auth]\ninitial_admin_password = "{PASSWORD}"\n'
    return config, GatewayProcess(config, https=https), simulator


@pytest.fixture(scope="module", params=["https-single-port", "http-two-ports"])
def setup(request, tmp_path_factory) -> Iterator[tuple[str, GatewayConfig, dict]]:
    https = request.param.startswith("https")
    config, gateway, simulator = _start(tmp_path_factory.mktemp(request.param), https=https)
    scheme = "https" if https else "http"
    base = f"{scheme}://127.0.0.1:{config.http_port}"
    login = httpx.post(
        f"{base}/.gateway/api/login",
        verify=False,
        timeout=10,
        json={"username": "admin", "password": PASSWORD},
    )
    assert login.status_code == 200
    name = "__Host-cemm_session" if https else "cemm_session"
    cookie = {
        "name": name,
        "value": login.cookies[name],
        "url": base + "/",
        "httpOnly": True,
        "secure": https,
        "sameSite": "Lax",
    }
    try:
        yield base, config, cookie
    finally:
        gateway.close()
        simulator.close()


@pytest.mark.parametrize("mode", MODES)
def test_live_reading_through_the_gateway(setup, mode: str) -> None:
    base, config, cookie = setup
    with chromium() as browser:
        context = browser.new_context(ignore_https_errors=True)
        context.add_cookies([cookie])
        page = context.new_page()
        problems: list[str] = []
        sockets: list[str] = []
        page.on("websocket", lambda socket: sockets.append(socket.url))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(f"{base}/?ws={mode}")
        page.wait_for_selector('#status[data-state="live"]', timeout=3000)
        assert page.locator("#power").get_attribute("data-watts")
        # The reading keeps coming: the socket is really open, not a one-off.
        # (Polled from here: the device's policy forbids evaluating strings in the page.)
        power = page.locator("#power")
        first = power.get_attribute("data-seq")
        deadline = time.monotonic() + 3
        while power.get_attribute("data-seq") == first and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert power.get_attribute("data-seq") != first
        context.close()
    assert problems == [], problems
    # Every socket went to the gateway (https: only its one port), none to the device.
    allowed = (base.replace("http", "ws", 1) + "/",)
    if not base.startswith("https"):
        allowed += (f"ws://127.0.0.1:{config.ws_port}/",)
    assert sockets and all(url.startswith(allowed) for url in sockets), sockets
