"""WebSocket load: ``python -m bench.wsload rtt|fanout ...`` prints one JSON object.

``rtt``: one socket; the device's readings are paused, then COUNT text messages are sent
one at a time and the echo awaited: round-trip p50/p99.

``fanout``: N sockets each receiving the device's reading every second. After all are
open (and a short settle), messages are watched for DURATION seconds:

- lost: gaps in a socket's ``seq`` within the window, plus readings a socket that went
  silent (or was closed) should have had;
- reordered: a ``seq`` not larger than the one before on the same socket;
- delivery delay: the simulator sends reading ``k`` of a socket at ``t0 + k * interval``
  (its own fixed schedule). The reading's ``time`` field has whole seconds only, so the
  send time is taken from that schedule: ``delay_k = recv_k - k * interval - min_j(recv_j -
  j * interval)``, i.e. the delay beyond the socket's fastest delivery (a few hundred
  microseconds on loopback). A device that fell behind its schedule shows up as delay too,
  for every system alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import ssl
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


def _ssl(url: str) -> ssl.SSLContext | None:
    if not url.startswith("wss:"):
        return None
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _connect(url: str, headers: dict[str, str], origin: str | None, timeout: float) -> Any:
    return connect(
        url,
        additional_headers=headers,
        origin=origin,  # type: ignore[arg-type]
        ssl=_ssl(url),
        open_timeout=timeout,
        close_timeout=2,
        max_size=2**22,
        ping_interval=None,
    )


async def rtt(args: argparse.Namespace) -> dict[str, Any]:
    headers = dict(h.split(": ", 1) for h in args.header)
    async with _connect(args.url, headers, args.origin, 30) as ws:
        await ws.send(json.dumps({"cmd": "readings", "enabled": False}))
        await asyncio.sleep(0.3)
        # Drain the reading sent on connect (and any before the pause took effect).
        while True:
            try:
                await asyncio.wait_for(ws.recv(), 0.2)
            except TimeoutError:
                break
        samples: list[float] = []
        payload = "x" * 64
        for i in range(args.warmup + args.count):
            message = f"{i}:{payload}"
            started = time.perf_counter()
            await ws.send(message)
            while await ws.recv() != message:
                pass
            if i >= args.warmup:
                samples.append((time.perf_counter() - started) * 1000)
    return {
        "count": len(samples),
        "p50_ms": percentile(samples, 50),
        "p99_ms": percentile(samples, 99),
        "mean_ms": statistics.fmean(samples),
    }


@dataclass
class Socket:
    received: list[tuple[float, int]] = field(default_factory=list)
    opened: bool = False
    open_error: str | None = None
    closed_at: float | None = None


async def _follow(
    index: int,
    args: argparse.Namespace,
    headers: dict[str, str],
    gate: asyncio.Semaphore,
    sock: Socket,
    stop: asyncio.Event,
) -> None:
    ws: ClientConnection | None = None
    async with gate:
        try:
            ws = await _connect(args.url, headers, args.origin, 60)
            sock.opened = True
        except Exception as error:  # refused, timed out: counted, not fatal
            sock.open_error = f"{type(error).__name__}: {error}"[:200]
            return
    assert ws is not None
    stopping = asyncio.create_task(stop.wait())
    try:
        while True:
            receiving = asyncio.create_task(ws.recv())
            done, _ = await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if receiving not in done:
                receiving.cancel()
                break
            message = receiving.result()
            now = time.monotonic()
            if isinstance(message, str) and '"reading"' in message:
                sock.received.append((now, int(json.loads(message)["seq"])))
    except ConnectionClosed:
        sock.closed_at = time.monotonic()
    finally:
        stopping.cancel()
        try:
            await asyncio.wait_for(ws.close(), 3)
        except Exception:  # closing at the end; nothing to learn
            pass


async def fanout(args: argparse.Namespace) -> dict[str, Any]:
    headers = dict(h.split(": ", 1) for h in args.header)
    gate = asyncio.Semaphore(args.open_concurrency)
    stop = asyncio.Event()
    sockets = [Socket() for _ in range(args.n)]
    started = time.monotonic()
    tasks = [
        asyncio.create_task(_follow(i, args, headers, gate, s, stop)) for i, s in enumerate(sockets)
    ]
    # Every socket opened (or failed), bounded.
    open_deadline = started + args.open_timeout
    while time.monotonic() < open_deadline:
        if all(s.opened or s.open_error for s in sockets):
            break
        await asyncio.sleep(0.05)
    open_seconds = time.monotonic() - started
    window_start = time.monotonic() + args.settle
    window_end = window_start + args.duration
    await asyncio.sleep(window_end - time.monotonic() + 0.2)
    stop.set()
    await asyncio.wait(tasks, timeout=30)
    for task in tasks:
        task.cancel()

    interval = args.interval
    delays: list[float] = []
    lost = reordered = closed_early = window_messages = 0
    for s in sockets:
        if not s.opened:
            continue
        if s.closed_at is not None and s.closed_at < window_end:
            closed_early += 1
        if not s.received:
            lost += int(args.duration / interval)
            continue
        base = min(t - seq * interval for t, seq in s.received)
        previous = -1
        in_window: list[int] = []
        for t, seq in s.received:
            if seq <= previous:
                reordered += 1
            previous = max(previous, seq)
            if window_start <= t <= window_end:
                in_window.append(seq)
                delays.append((t - seq * interval - base) * 1000)
        window_messages += len(in_window)
        if in_window:
            lost += (max(in_window) - min(in_window) + 1) - len(set(in_window))
        # Silent (or closed) before the window ended: what it should still have had.
        last = s.received[-1][0]
        if window_end - last > 2.5 * interval:
            lost += int((window_end - max(last, window_start)) / interval)
    return {
        "n": args.n,
        "opened": sum(s.opened for s in sockets),
        "failed_open": sum(1 for s in sockets if s.open_error),
        "open_errors": sorted({s.open_error for s in sockets if s.open_error})[:3],
        "open_seconds": open_seconds,
        "closed_early": closed_early,
        "messages": window_messages,
        "lost": lost,
        "reordered": reordered,
        "p50_ms": percentile(delays, 50),
        "p99_ms": percentile(delays, 99),
        "max_ms": max(delays) if delays else math.nan,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.wsload")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("rtt", "fanout"):
        p = sub.add_parser(name)
        p.add_argument("--url", required=True)
        p.add_argument("--header", action="append", default=[], help="'Name: value'")
        p.add_argument("--origin")
    sub.choices["rtt"].add_argument("--count", type=int, default=1000)
    sub.choices["rtt"].add_argument("--warmup", type=int, default=50)
    f = sub.choices["fanout"]
    f.add_argument("--n", type=int, required=True)
    f.add_argument("--duration", type=float, default=60)
    f.add_argument("--settle", type=float, default=2.0)
    f.add_argument("--interval", type=float, default=1.0)
    f.add_argument("--open-concurrency", type=int, default=50)
    f.add_argument("--open-timeout", type=float, default=120)
    args = parser.parse_args()
    result = asyncio.run(rtt(args) if args.command == "rtt" else fanout(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
