"""The simulated CEMM's web port over real loopback sockets: API, page, assets, helpers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from gateway.simulator import SimulatorConfig, SimulatorStartError, start_simulator

PATTERN = bytes(range(256))


def async_test(
    timeout: float = 10.0,
) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., None]]:
    """Run an async test in a fresh event loop, failing it after ``timeout`` seconds."""

    def decorate(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
        @functools.wraps(test)
        def run(*args: Any, **kwargs: Any) -> None:
            async def bounded() -> None:
                async with asyncio.timeout(timeout):
                    await test(*args, **kwargs)

            asyncio.run(bounded())

        return run

    return decorate


def config(**overrides: Any) -> SimulatorConfig:
    return SimulatorConfig(**{"http_port": 0, "ws_port": 0, **overrides})


def client(sim: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim.http_port}", timeout=5)


# --- public API --------------------------------------------------------------------------


@async_test()
async def test_cemm_info_has_the_documented_shape() -> None:
    async with await start_simulator(config(mac="80-1f-12-47-06-b1")) as sim, client(sim) as http:
        response = await http.get("/api/v1/public/cemm")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    info = response.json()
    assert list(info) == [
        "id", "name", "icon", "icon_color", "mac", "local_ip", "version", "timezone",
        "time", "modules", "currency",
    ]  # fmt: skip
    assert info["mac"] == "80:1F:12:47:06:B1"
    assert info["local_ip"] == "127.0.0.1"
    assert abs(info["time"] - time.time()) <= 2


@async_test()
async def test_device_time_is_live_and_includes_the_skew() -> None:
    now = [1_736_428_623.5]
    async with (
        await start_simulator(config(clock=lambda: now[0], clock_skew=3600)) as sim,
        client(sim) as http,
    ):
        first = (await http.get("/api/v1/public/cemm")).json()["time"]
        now[0] += 5
        second = (await http.get("/api/v1/public/cemm")).json()["time"]
        sim.clock_skew = -120
        third = (await http.get("/api/v1/public/cemm")).json()["time"]
    assert (first, second, third) == (1_736_432_223, 1_736_432_228, 1_736_428_508)


@async_test()
async def test_device_time_uses_the_real_clock_by_default() -> None:
    async with await start_simulator(config(clock_skew=-86400)) as sim, client(sim) as http:
        info = (await http.get("/api/v1/public/cemm")).json()
    assert abs(info["time"] - (time.time() - 86400)) <= 2


@async_test()
async def test_mac_can_change_while_running() -> None:
    async with await start_simulator(config()) as sim, client(sim) as http:
        sim.mac = "aa:bb:cc:dd:ee:01"
        info = (await http.get("/api/v1/public/cemm")).json()
        with pytest.raises(ValueError, match="not a MAC address"):
            sim.mac = "aa:bb"
        assert sim.mac == "AA:BB:CC:DD:EE:01"
    assert info["mac"] == "AA:BB:CC:DD:EE:01"


@async_test()
async def test_meters_lists_the_hoofdmeter_with_channels() -> None:
    async with await start_simulator(config()) as sim, client(sim) as http:
        response = await http.get("/api/v1/public/meters")
    assert response.status_code == 200
    meters = response.json()["meters"]
    assert meters[0]["key"] == "hoofdmeter"
    assert meters[0]["channels"][0]["key"] == "electric_power_import"
    assert meters[0]["channels"][0]["unit"] == "W"


@async_test()
@pytest.mark.parametrize("path", ["/api/v1/public/cemm", "/api/v1/public/meters"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_api_is_get_only(path: str, method: str) -> None:
    async with await start_simulator(config()) as sim, client(sim) as http:
        response = await http.request(method, path, content=b"{}")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]


@async_test()
async def test_unknown_api_paths_are_json_404() -> None:
    async with await start_simulator(config()) as sim, client(sim) as http:
        response = await http.get("/api/v1/private/secrets")
    assert response.status_code == 404
    assert response.json()["error"] == "not found"


# --- the page ----------------------------------------------------------------------------


@async_test()
@pytest.mark.parametrize(
    "path", ["/", "/dashboard", "/instellingen/systeem", "/instellingen/systeem/", "/a/b?x=1"]
)
async def test_deep_links_serve_the_app(path: str) -> None:
    async with await start_simulator(config()) as sim, client(sim) as http:
        response = await http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script src="/assets/app.js" defer></script>' in response.text
    assert f'<meta name="cemm-ws-port" content="{sim.ws_port}">' in response.text


@async_test()
async def test_page_tells_the_script_the_configured_websocket() -> None:
    settings = config(page_mode="protocol-aware", page_ws_port=18090, ws_path="/live")
    async with await start_simulator(settings) as sim, client(sim) as http:
        page = (await http.get("/")).text
        sim.config.page_mode = "same-origin"
        later = (await http.get("/")).text
    assert '<meta name="cemm-ws-mode" content="protocol-aware">' in page
    assert '<meta name="cemm-ws-port" content="18090">' in page
    assert '<meta name="cemm-ws-path" content="/live">' in page
    assert '<meta name="cemm-ws-mode" content="same-origin">' in later


@async_test()
@pytest.mark.parametrize(
    ("name", "content_type", "marker"),
    [
        ("app.js", "text/javascript; charset=utf-8", b"WebSocket"),
        ("app.css", "text/css; charset=utf-8", b"--accent"),
        ("icon.svg", "image/svg+xml", b"<svg"),
    ],
)
async def test_assets_are_served_with_their_content_type(
    name: str, content_type: str, marker: bytes
) -> None:
    async with await start_simulator(config()) as sim, client(sim) as http:
        response = await http.get(f"/assets/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert marker in response.content


@async_test()
@pytest.mark.parametrize("path", ["/assets/missing.js", "/assets/", "/assets/sub/app.js"])
async def test_unknown_assets_are_404(path: str) -> None:
    async with await start_simulator(config()) as sim, client(sim) as http:
        response = await http.get(path)
    assert response.status_code == 404


# --- helpers for proxy tests -------------------------------------------------------------


@async_test()
@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_echo_reports_the_request_and_a_body_digest(method: str) -> None:
    body = os.urandom(1_000_003)
    async with await start_simulator(config()) as sim, client(sim) as http:
        response = await http.request(
            method,
            "/_sim/echo?b=2&a=%20x",
            content=body,
            headers=[("X-Twice", "one"), ("X-Twice", "two"), ("Cookie", "a=1")],
        )
    echoed = response.json()
    assert response.status_code == 200
    assert echoed["method"] == method
    assert echoed["path"] == "/_sim/echo"
    assert echoed["query"] == "b=2&a=%20x"
    assert echoed["body_length"] == len(body)
    assert echoed["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert echoed["headers"]["x-twice"] == "one, two"
    assert ["x-twice", "one"] in echoed["header_list"]
    assert ["x-twice", "two"] in echoed["header_list"]
    assert echoed["headers"]["cookie"] == "a=1"
    assert echoed["client"].startswith("127.0.0.1:")


@async_test()
async def test_echo_takes_a_chunked_upload() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 10_000

    async with await start_simulator(config()) as sim, client(sim) as http:
        echoed = (await http.post("/_sim/echo", content=chunks())).json()
    assert echoed["headers"]["transfer-encoding"] == "chunked"
    assert echoed["body_length"] == 100_000
    assert echoed["body_sha256"] == hashlib.sha256(b"x" * 100_000).hexdigest()


@async_test()
async def test_echo_keeps_the_raw_path() -> None:
    async with await start_simulator(config()) as sim, client(sim) as http:
        echoed = (await http.get("/_sim/%65cho")).json()
    assert echoed["path"] == "/_sim/echo"
    assert echoed["raw_path"] == "/_sim/%65cho"


@async_test(timeout=20)
@pytest.mark.parametrize("count", [0, 1, 255, 65_536, 200_001])
async def test_bytes_streams_the_pattern_chunked(count: int) -> None:
    async with await start_simulator(config()) as sim, client(sim) as http:
        response = await http.get(f"/_sim/bytes/{count}")
    assert response.status_code == 200
    assert response.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.headers
    assert response.content == (PATTERN * (count // 256 + 1))[:count]


@async_test()
async def test_bytes_can_send_a_content_length() -> None:
    async with await start_simulator(config()) as sim, client(sim) as http:
        response = await http.get("/_sim/bytes/1000?sized=1")
    assert response.headers["content-length"] == "1000"
    assert response.content == (PATTERN * 4)[:1000]


@async_test()
async def test_bytes_is_capped_at_100_mib() -> None:
    async with await start_simulator(config()) as sim, client(sim) as http:
        response = await http.get(f"/_sim/bytes/{100 * 1024 * 1024 + 1}")
    assert response.status_code == 400


@async_test(timeout=30)
async def test_bytes_delivers_100_mib() -> None:
    count = 100 * 1024 * 1024
    digest = hashlib.sha256()
    received = 0
    async with await start_simulator(config()) as sim, client(sim) as http:
        async with http.stream("GET", f"/_sim/bytes/{count}") as response:
            async for chunk in response.aiter_raw():
                digest.update(chunk)
                received += len(chunk)
    expected = hashlib.sha256((PATTERN * 256) * (count // 65_536)).hexdigest()
    assert (received, digest.hexdigest()) == (count, expected)


@async_test()
async def test_redirect_names_the_host_it_was_reached_by() -> None:
    async with await start_simulator(config()) as sim, client(sim) as http:
        response = await http.get("/_sim/redirect", headers={"Host": "cemm.lan:8080"})
        other = await http.get("/_sim/redirect?to=/dashboard")
        bad = await http.get("/_sim/redirect?to=//evil.example/")
    assert response.status_code == 302
    assert response.headers["location"] == "http://cemm.lan:8080/instellingen/systeem"
    assert other.headers["location"] == f"http://127.0.0.1:{sim.http_port}/dashboard"
    assert bad.status_code == 400


@async_test()
async def test_headers_helper_returns_what_arrived() -> None:
    async with await start_simulator(config()) as sim, client(sim) as http:
        response = await http.get("/_sim/headers", headers={"X-Forwarded-For": "10.0.0.9"})
    received = response.json()
    assert received["headers"]["x-forwarded-for"] == "10.0.0.9"
    assert received["headers"]["host"] == f"127.0.0.1:{sim.http_port}"


@async_test()
@pytest.mark.parametrize("code", [200, 204, 304, 404, 500, 503])
async def test_status_helper(code: int) -> None:
    async with await start_simulator(config()) as sim, client(sim) as http:
        response = await http.get(f"/_sim/status/{code}")
    assert response.status_code == code


@async_test()
async def test_unknown_helper_is_404_not_the_app() -> None:
    async with await start_simulator(config()) as sim, client(sim) as http:
        response = await http.get("/_sim/nothing")
    assert response.status_code == 404


@async_test()
async def test_delay_helper_waits() -> None:
    async with await start_simulator(config()) as sim, client(sim) as http:
        started = time.monotonic()
        response = await http.get("/_sim/delay?seconds=0.3")
        elapsed = time.monotonic() - started
        too_long = await http.get("/_sim/delay?seconds=31")
    assert response.status_code == 200
    assert 0.3 <= elapsed < 2
    assert too_long.status_code == 400


# --- what the device saw -----------------------------------------------------------------


@async_test()
async def test_every_request_is_recorded_before_it_is_answered() -> None:
    async with await start_simulator(config()) as sim, client(sim) as http:
        await http.get("/dashboard?tab=1", headers={"Cookie": "session=abc"})
        await http.post("/api/v1/public/cemm")
        await http.get("/assets/nope.js")
        recorded = sim.requests
        count = sim.request_count
        sim.clear_traffic()
        cleared = (sim.requests, sim.request_count)
    assert count == 3
    assert [(r.port, r.method, r.path) for r in recorded] == [
        ("http", "GET", "/dashboard"),
        ("http", "POST", "/api/v1/public/cemm"),
        ("http", "GET", "/assets/nope.js"),
    ]
    assert recorded[0].query == "tab=1"
    assert recorded[0].header("cookie") == "session=abc"
    assert recorded[0].client is not None and recorded[0].client.startswith("127.0.0.1:")
    assert not recorded[0].websocket
    assert cleared == ([], 0)


# --- same-origin WebSocket on the web port -----------------------------------------------


@async_test()
async def test_web_port_serves_the_live_websocket_at_ws_path() -> None:
    async with await start_simulator(config(ws_path="/live")) as sim:
        async with connect(f"ws://127.0.0.1:{sim.http_port}/live") as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
            await ws.send(b"\x00\xff")
            while (echoed := await ws.recv()) != b"\x00\xff":
                assert json.loads(echoed)["type"] == "reading"
        with pytest.raises(InvalidStatus):
            async with connect(f"ws://127.0.0.1:{sim.http_port}/elsewhere"):
                pass
        handshake = [r for r in sim.requests if r.websocket]
    assert first["type"] == "reading"
    assert first["seq"] == 0
    assert handshake[0].port == "http"
    assert handshake[0].path == "/live"
    assert sim.ws_connection_count == 1
    assert sim.ws_messages_received == 1


@async_test()
async def test_web_port_websocket_gets_1012_when_stopping() -> None:
    sim = await start_simulator(config())
    async with connect(f"ws://127.0.0.1:{sim.http_port}/ws") as ws:
        await ws.recv()
        await sim.stop()
        await ws.wait_closed()
    assert ws.close_code == 1012


# --- starting and stopping ---------------------------------------------------------------


@async_test()
async def test_stopping_does_not_wait_for_a_stalled_download() -> None:
    sim = await start_simulator(config())
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.http_port)
    writer.write(b"GET /_sim/bytes/104857600 HTTP/1.1\r\nHost: cemm\r\n\r\n")
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    # The client never reads the rest, so the device's send buffers fill up and stay full.
    started = time.monotonic()
    await sim.stop()
    elapsed = time.monotonic() - started
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    assert elapsed < 2


@async_test()
async def test_stop_is_idempotent() -> None:
    sim = await start_simulator(config())
    await sim.stop()
    await sim.stop()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", sim.http_port)


@async_test()
@pytest.mark.parametrize(
    ("busy", "option"), [("http_port", "--http-port"), ("ws_port", "--ws-port")]
)
async def test_a_busy_port_is_reported_with_the_option_to_change(busy: str, option: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(SimulatorStartError, match=re.escape(option)) as failure:
            await start_simulator(config(**{busy: port}))
    assert str(port) in str(failure.value)


@async_test()
@pytest.mark.parametrize("steps", range(12))
async def test_cancelling_a_start_leaves_nothing_running(steps: int) -> None:
    starting = asyncio.create_task(start_simulator(config()))
    for _ in range(steps):
        await asyncio.sleep(0)
    starting.cancel()
    try:
        simulator = await starting
    except asyncio.CancelledError:
        pass
    else:  # it was ready before the cancel arrived
        await simulator.stop()
    assert asyncio.all_tasks() == {asyncio.current_task()}
