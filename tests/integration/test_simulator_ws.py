"""The simulated CEMM's live-data WebSocket port over real loopback sockets."""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gateway.simulator import Simulator, SimulatorConfig, start_simulator


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


def ws_url(sim: Simulator, path: str = "/ws") -> str:
    return f"ws://127.0.0.1:{sim.ws_port}{path}"


async def quiet(ws: ClientConnection) -> None:
    """Pause the readings and drop any already on the way, so only replies follow."""
    await ws.send(json.dumps({"cmd": "readings", "enabled": False}))
    await ws.send("marker")
    while await ws.recv() != "marker":
        pass


async def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Poll ``condition``: the server's side of a close finishes a little after the client's."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def next_of_type(ws: ClientConnection, kind: str) -> dict[str, Any]:
    while True:
        message = await ws.recv()
        if isinstance(message, str) and message.startswith("{"):
            document = json.loads(message)
            if document.get("type") == kind:
                return dict(document)


# --- readings ----------------------------------------------------------------------------


@async_test()
async def test_first_reading_at_once_then_one_a_second() -> None:
    async with await start_simulator(config()) as sim:
        started = time.monotonic()
        async with connect(ws_url(sim)) as ws:
            first = json.loads(await ws.recv())
            first_at, first_wall = time.monotonic(), time.time()
            second = json.loads(await ws.recv())
            second_at = time.monotonic()
    assert first_at - started < 0.5
    assert 0.8 <= second_at - first_at <= 1.5
    assert (first["type"], first["seq"], second["seq"]) == ("reading", 0, 1)
    assert isinstance(first["time"], int)
    assert isinstance(first["power_w"], float)
    assert "electric_power_import" in first["channels"]
    assert first_wall - 2 <= first["time"] <= first_wall


@async_test()
async def test_readings_carry_the_skewed_device_time() -> None:
    async with await start_simulator(config(clock_skew=-7200)) as sim:
        async with connect(ws_url(sim)) as ws:
            before = json.loads(await ws.recv())["time"]
            before_wall = time.time()
            sim.clock_skew = 7200
            after = (await next_of_type(ws, "reading"))["time"]
            after_wall = time.time()
    assert before_wall - 7200 - 2 <= before <= before_wall - 7200
    assert after_wall + 7200 - 2 <= after <= after_wall + 7200


@async_test()
async def test_seq_counts_from_zero_on_every_connection() -> None:
    async with await start_simulator(config(interval=0.02)) as sim:
        async with connect(ws_url(sim)) as one:
            seqs = [json.loads(await one.recv())["seq"] for _ in range(20)]
            async with connect(ws_url(sim)) as two:
                other = json.loads(await two.recv())["seq"]
    assert seqs == list(range(20))
    assert other == 0


@async_test()
async def test_readings_can_be_paused_and_resumed() -> None:
    async with await start_simulator(config(interval=0.05)) as sim:
        async with connect(ws_url(sim)) as ws:
            await quiet(ws)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)
            await ws.send(json.dumps({"cmd": "readings", "enabled": True}))
            resumed = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
    assert resumed["type"] == "reading"


@async_test()
@pytest.mark.parametrize("path", ["/ws", "/", "/some/other/path?token=1"])
async def test_any_path_is_accepted_and_recorded(path: str) -> None:
    async with await start_simulator(config()) as sim:
        async with connect(ws_url(sim, path)) as ws:
            reading = json.loads(await ws.recv())
        recorded = sim.requests[-1]
    assert reading["type"] == "reading"
    assert (recorded.port, recorded.method, recorded.websocket) == ("ws", "GET", True)
    assert recorded.path == path.split("?")[0]
    assert recorded.query == (path.split("?")[1] if "?" in path else "")
    assert recorded.header("upgrade") == "websocket"


# --- echo --------------------------------------------------------------------------------


@async_test()
async def test_text_and_binary_messages_come_back_exactly() -> None:
    messages: list[str | bytes] = [
        "hello",
        "",
        "Vermogen \u26a1 1.234 W \u2013 \u00fcn\u00efc\u00f8d\u00e9",
        '{"type":"reading","seq":-1}',
        '{"not a command": 1}',
        bytes(range(256)),
        b"",
        b"\x00" * 70_000,
    ]
    async with await start_simulator(config()) as sim:
        async with connect(ws_url(sim)) as ws:
            await quiet(ws)
            for message in messages:
                await ws.send(message)
            received = [await ws.recv() for _ in messages]
    assert received == messages
    assert [type(m) for m in received] == [type(m) for m in messages]


@async_test()
async def test_large_messages_echo_in_both_directions() -> None:
    big = bytes(range(256)) * (5 * 4096)  # 5 MiB
    async with await start_simulator(config()) as sim:
        async with connect(ws_url(sim), max_size=None) as ws:
            await quiet(ws)
            await ws.send(big)
            assert await ws.recv() == big


# --- commands ----------------------------------------------------------------------------


@async_test(timeout=20)
@pytest.mark.parametrize("count", [1000, 20_000])
async def test_burst_arrives_complete_and_in_order(count: int) -> None:
    async with await start_simulator(config(interval=0.01)) as sim:
        async with connect(ws_url(sim)) as ws:
            await ws.send(json.dumps({"cmd": "burst", "count": count}))
            seqs = [(await next_of_type(ws, "burst"))["seq"] for _ in range(count)]
    assert seqs == list(range(count))


@async_test()
async def test_burst_can_pad_messages() -> None:
    async with await start_simulator(config()) as sim:
        async with connect(ws_url(sim)) as ws:
            await ws.send(json.dumps({"cmd": "burst", "count": 2, "pad": 1000}))
            first = await next_of_type(ws, "burst")
    assert first["pad"] == "x" * 1000


@async_test()
@pytest.mark.parametrize(
    ("code", "reason"), [(1000, ""), (1001, "bye"), (1011, "oops"), (3000, "x"), (4999, "é" * 10)]
)
async def test_close_command_passes_code_and_reason(code: int, reason: str) -> None:
    async with await start_simulator(config()) as sim:
        async with connect(ws_url(sim)) as ws:
            await ws.send(json.dumps({"cmd": "close", "code": code, "reason": reason}))
            with pytest.raises(ConnectionClosed):
                while True:
                    await ws.recv()
        assert (ws.close_code, ws.close_reason) == (code, reason)
        await wait_until(lambda: sim.ws_open_connections == 0)


@async_test()
@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ({"cmd": "close", "code": 1005}, "cannot be sent"),
        ({"cmd": "close", "code": 4000, "reason": "x" * 124}, "longer than 123 bytes"),
        ({"cmd": "close", "code": "1000"}, "not an integer"),
        ({"cmd": "burst", "count": -1}, "burst needs"),
        ({"cmd": "burst"}, "burst needs"),
        ({"cmd": "readings", "enabled": "no"}, "readings needs"),
        ({"cmd": "reboot"}, "unknown command 'reboot'"),
    ],
)
async def test_bad_commands_are_answered_with_an_error(
    command: dict[str, Any], problem: str
) -> None:
    async with await start_simulator(config()) as sim:
        async with connect(ws_url(sim)) as ws:
            await ws.send(json.dumps(command))
            error = await next_of_type(ws, "error")
            await ws.send("still open")
            while (message := await ws.recv()) != "still open":
                assert json.loads(message)["type"] == "reading"
    assert problem in error["error"]


# --- protocol ----------------------------------------------------------------------------


@async_test()
async def test_pings_are_answered() -> None:
    async with await start_simulator(config()) as sim:
        async with connect(ws_url(sim), ping_interval=None) as ws:
            pong = await ws.ping(b"are you there")
            latency = await asyncio.wait_for(pong, 1)
    assert latency < 1


@async_test()
async def test_plain_http_gets_426_with_a_hint() -> None:
    async with await start_simulator(config()) as sim:
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.get(f"http://127.0.0.1:{sim.ws_port}/ws")
        recorded = sim.requests[-1]
    assert response.status_code == 426
    assert response.headers["upgrade"] == "websocket"
    assert "WebSocket" in response.text
    assert (recorded.port, recorded.path, recorded.websocket) == ("ws", "/ws", False)
    assert sim.ws_connection_count == 0


@async_test()
async def test_garbage_on_the_port_does_not_hurt() -> None:
    async with await start_simulator(config()) as sim:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.ws_port)
        writer.write(b"\x16\x03\x01\x02\x00not http at all\r\n\r\n")
        await writer.drain()
        await asyncio.wait_for(reader.read(), 2)  # the server answers or hangs up, promptly
        writer.close()
        await writer.wait_closed()
        async with connect(ws_url(sim)) as ws:
            assert json.loads(await ws.recv())["type"] == "reading"


# --- counters ----------------------------------------------------------------------------


@async_test()
async def test_counters_follow_connections_and_messages() -> None:
    async with await start_simulator(config()) as sim:
        async with connect(ws_url(sim)) as one, connect(ws_url(sim)) as two:
            await one.send("a")
            await one.send(b"b")
            await two.send(json.dumps({"cmd": "burst", "count": 1}))
            await next_of_type(two, "burst")
            while await one.recv() != b"b":
                pass
            during = (sim.ws_connection_count, sim.ws_open_connections, sim.ws_messages_received)
        await wait_until(lambda: sim.ws_open_connections == 0)
        after = (sim.ws_connection_count, sim.ws_open_connections)
    assert during == (2, 2, 3)
    assert after == (2, 0)


# --- robustness --------------------------------------------------------------------------


@async_test(timeout=20)
async def test_a_stalled_client_does_not_hold_up_others() -> None:
    async with await start_simulator(config(interval=0.1)) as sim:
        # max_queue=1: the client stops reading from its socket almost at once.
        stalled = await connect(ws_url(sim), max_queue=1, compression=None)
        await stalled.send(json.dumps({"cmd": "burst", "count": 50_000, "pad": 2000}))
        await asyncio.sleep(0.3)
        async with connect(ws_url(sim)) as healthy:
            arrivals = []
            for _ in range(10):
                await next_of_type(healthy, "reading")
                arrivals.append(time.monotonic())
            started = time.monotonic()
            await healthy.send("ping?")
            while await healthy.recv() != "ping?":
                pass
            round_trip = time.monotonic() - started
        # A graceful close would wait for the server's close frame behind the unread burst.
        stalled.transport.abort()
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert max(gaps) < 0.5
    assert round_trip < 0.5


@async_test()
async def test_a_client_vanishing_mid_burst_is_harmless() -> None:
    async with await start_simulator(config()) as sim:
        ws = await connect(ws_url(sim))
        await ws.send(json.dumps({"cmd": "burst", "count": 100_000}))
        await ws.recv()
        ws.transport.abort()
        await wait_until(lambda: sim.ws_open_connections == 0)
        async with connect(ws_url(sim)) as other:
            assert json.loads(await other.recv())["seq"] == 0


@async_test()
async def test_stopping_closes_connections_with_going_away() -> None:
    sim = await start_simulator(config())
    async with connect(ws_url(sim)) as ws:
        await ws.recv()
        started = time.monotonic()
        await sim.stop()
        elapsed = time.monotonic() - started
        await ws.wait_closed()
    assert ws.close_code == 1001
    assert elapsed < 1
    assert sim.ws_open_connections == 0


@async_test()
async def test_stopping_with_a_stalled_client_takes_at_most_about_a_second() -> None:
    sim = await start_simulator(config())
    stalled = await connect(ws_url(sim), max_queue=1, compression=None)
    await stalled.send(json.dumps({"cmd": "burst", "count": 50_000, "pad": 2000}))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await sim.stop()
    elapsed = time.monotonic() - started
    stalled.transport.abort()
    assert elapsed < 2
