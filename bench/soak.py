"""``python -m bench.soak --target JSON ... --duration S``: a mixed, paced load.

Per target, for DURATION seconds (the runner samples the proxies' memory meanwhile):

- HTTP: ~40 requests/s over 4 kept-alive connections - the API document (70%), the page
  (20%), a 64 KiB streamed body (10%) - plus one request without credentials every 2 s;
- WebSocket: 20 sockets held open for the whole soak, receiving readings, and one new
  socket every second that reads two readings and closes (connection churn);
- for a gateway: a JSON login followed by a logout every 20 s (sessions come and go).

Prints one JSON object: per target, requests, errors and sockets opened.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from typing import Any

import httpx
from websockets.asyncio.client import connect

PATHS = [("/api/v1/public/cemm", 70), ("/", 20), ("/_sim/bytes/65536", 10)]


async def _http_worker(
    client: httpx.AsyncClient, t: dict[str, Any], stats: Counter[str], end: float, rate: float
) -> None:
    rng = random.Random()
    paths = [p for p, _ in PATHS]
    weights = [w for _, w in PATHS]
    next_at = time.monotonic()
    while time.monotonic() < end:
        path = rng.choices(paths, weights)[0]
        try:
            response = await client.get(t["base"] + path, headers=t["headers"])
            stats["http_ok" if response.status_code == 200 else f"http_{response.status_code}"] += 1
        except httpx.HTTPError as error:
            stats[f"http_error_{type(error).__name__}"] += 1
        next_at += 1 / rate
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def _anonymous(t: dict[str, Any], stats: Counter[str], end: float) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        while time.monotonic() < end:
            try:
                response = await client.get(t["base"] + "/api/v1/public/cemm")
                stats[f"anonymous_{response.status_code}"] += 1
            except httpx.HTTPError:
                stats["anonymous_error"] += 1
            await asyncio.sleep(2)


async def _hold_socket(t: dict[str, Any], stats: Counter[str], end: float) -> None:
    try:
        async with connect(
            t["ws"],
            additional_headers=t["headers"],
            origin=t["origin"],
            open_timeout=30,
            ping_interval=None,
        ) as ws:
            stats["ws_held_opened"] += 1
            while time.monotonic() < end:
                try:
                    await asyncio.wait_for(ws.recv(), max(0.1, end - time.monotonic()))
                    stats["ws_messages"] += 1
                except TimeoutError:
                    break
    except Exception as error:
        stats[f"ws_held_error_{type(error).__name__}"] += 1


async def _churn(t: dict[str, Any], stats: Counter[str], end: float) -> None:
    async def one() -> None:
        try:
            async with connect(
                t["ws"],
                additional_headers=t["headers"],
                origin=t["origin"],
                open_timeout=10,
                ping_interval=None,
            ) as ws:
                for _ in range(2):
                    await asyncio.wait_for(ws.recv(), 5)
                stats["ws_churn_ok"] += 1
        except Exception as error:
            stats[f"ws_churn_error_{type(error).__name__}"] += 1

    running: set[asyncio.Task[None]] = set()
    while time.monotonic() < end:
        task = asyncio.create_task(one())
        running.add(task)
        task.add_done_callback(running.discard)
        await asyncio.sleep(1)
    if running:
        await asyncio.wait(running, timeout=10)


async def _logins(t: dict[str, Any], stats: Counter[str], end: float) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        while time.monotonic() < end:
            try:
                response = await client.post(
                    t["base"] + "/.gateway/api/login",
                    json={"username": t["user"], "password": t["password"]},
                )
                document = response.json()
                stats[f"login_{response.status_code}"] += 1
                response = await client.post(
                    t["base"] + "/.gateway/logout",
                    data={"csrf_token": document.get("csrf_token", "")},
                    headers={"Origin": t["origin"]},
                )
                stats[f"logout_{response.status_code}"] += 1
                client.cookies.clear()
            except (httpx.HTTPError, ValueError) as error:
                stats[f"login_error_{type(error).__name__}"] += 1
            await asyncio.sleep(20)


async def soak_target(t: dict[str, Any], duration: float) -> dict[str, int]:
    stats: Counter[str] = Counter()
    end = time.monotonic() + duration
    async with httpx.AsyncClient(
        timeout=10, limits=httpx.Limits(max_connections=4, max_keepalive_connections=4)
    ) as client:
        jobs = [_http_worker(client, t, stats, end, 10.0) for _ in range(4)]
        jobs += [_anonymous(t, stats, end), _churn(t, stats, end)]
        jobs += [_hold_socket(t, stats, end) for _ in range(20)]
        if t.get("user"):
            jobs.append(_logins(t, stats, end))
        await asyncio.gather(*jobs)
    return dict(stats)


async def run(targets: list[dict[str, Any]], duration: float) -> dict[str, Any]:
    results = await asyncio.gather(*(soak_target(t, duration) for t in targets))
    return {t["name"]: r for t, r in zip(targets, results, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak")
    parser.add_argument("--target", action="append", required=True, help="JSON")
    parser.add_argument("--duration", type=float, required=True)
    args = parser.parse_args()
    targets = [json.loads(t) for t in args.target]
    json.dump(asyncio.run(run(targets, args.duration)), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
