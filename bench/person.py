"""A logged-in person's requests, in a process of their own: ``python -m bench.person PORT
HEADERS_JSON RATE SECONDS`` sends ``GET /api/v1/public/cemm`` at RATE per second on one
kept-alive connection for SECONDS and prints ``[[sent_at, seconds, status], ...]`` (sent_at
on the system's monotonic clock, which every process shares).

Its own process so that what it measures is the gateway: in the benchmark's process, the
storm's 200 client threads would hold the interpreter lock while this request waits.
"""

from __future__ import annotations

import http.client
import json
import sys
import time


def main() -> None:
    port, headers = int(sys.argv[1]), json.loads(sys.argv[2])
    rate, seconds = float(sys.argv[3]), float(sys.argv[4])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out: list[tuple[float, float, int]] = []
    interval = 1 / rate
    began = next_at = time.monotonic()
    while time.monotonic() - began < seconds:
        sent = time.monotonic()
        try:
            connection.request("GET", "/api/v1/public/cemm", headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            status = 0
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        out.append((sent, time.monotonic() - sent, status))
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    connection.close()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
