"""Request-smuggling probes over raw sockets: every ambiguous request is refused (400, or
501 for an unknown transfer coding) or normalised, and the CEMM never receives an
ambiguous one.

Each probe carries a unique marker in its path; ``sim.requests`` (what reached the
simulated device) shows whether it got through and how it looked there. A second,
smuggled request always targets ``/_sim/echo?smuggled-<marker>``.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import TRUSTED_LOOPBACK
from tests.support.gateway import GatewayConfig, GatewayProcess, SimulatorThread, wait_for

REFUSED = "refused"
NORMALISED = "normalised"


@dataclass(frozen=True)
class Probe:
    name: str
    head: str  # with {path} and {smuggled} placeholders; "\n" written as-is
    body: bytes = b""
    allowed: frozenset[str] = frozenset({REFUSED})
    refusal: frozenset[int] = frozenset({400})
    complete: bool = True  # False: read as forwarded, the body would still be unfinished


SMUGGLED = "GET {smuggled} HTTP/1.1\r\nHost: cemm\r\n\r\n"

PROBES = [
    Probe(
        "CL.TE",
        "POST {path} HTTP/1.1\r\nHost: cemm\r\nContent-Length: 6\r\n"
        "Transfer-Encoding: chunked\r\n\r\n",
        b"0\r\n\r\nG",
    ),
    Probe(
        "TE.CL",
        "POST {path} HTTP/1.1\r\nHost: cemm\r\nTransfer-Encoding: chunked\r\n"
        "Content-Length: 4\r\n\r\n",
        b"5c\r\n" + SMUGGLED.encode() + b"\r\n0\r\n\r\n",
    ),
    Probe(
        "duplicate Content-Length, different",
        "POST {path} HTTP/1.1\r\nHost: cemm\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\n",
        b"hello",
    ),
    Probe(
        "duplicate Content-Length, same",
        "POST {path} HTTP/1.1\r\nHost: cemm\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        b"hello",
        allowed=frozenset({REFUSED, NORMALISED}),
    ),
    Probe(
        "Content-Length list",
        "POST {path} HTTP/1.1\r\nHost: cemm\r\nContent-Length: 5, 5\r\n\r\n",
        b"hello",
        allowed=frozenset({REFUSED, NORMALISED}),
    ),
    Probe(
        "Content-Length with a sign",
        "POST {path} HTTP/1.1\r\nHost: cemm\r\nContent-Length: +5\r\n\r\n",
        b"hello",
    ),
    Probe(
        "space before the colon",
        "POST {path} HTTP/1.1\r\nHost: cemm\r\nContent-Length : 5\r\n\r\n",
        b"hello",
    ),
    Probe(
        "obs-fold",
        "GET {path} HTTP/1.1\r\nHost: cemm\r\nX-Folded: first\r\n second\r\n\r\n",
    ),
    Probe(
        "obs-fold on Transfer-Encoding",
        "POST {path} HTTP/1.1\r\nHost: cemm\r\nContent-Length: 5\r\nTransfer-Encoding:\r\n"
        " chunked\r\n\r\n",
        b"0\r\n\r\n",
    ),
    Probe(
        "obfuscated Transfer-Encoding",
        "POST {path} HTTP/1.1\r\nHost: cemm\r\nTransfer-Encoding: xchunked\r\n"
        "Content-Length: 5\r\n\r\n",
        b"hello",
        refusal=frozenset({400, 501}),
    ),
    Probe(
        "two Transfer-Encoding headers",
        "POST {path} HTTP/1.1\r\nHost: cemm\r\nTransfer-Encoding: chunked\r\n"
        "Transfer-Encoding: identity\r\n\r\n",
        b"0\r\n\r\n",
        refusal=frozenset({400, 501}),
    ),
    Probe(
        "unknown transfer coding",
        "POST {path} HTTP/1.1\r\nHost: cemm\r\nTransfer-Encoding: foo\r\n\r\n",
        b"hello",
        refusal=frozenset({400, 501}),
    ),
    Probe(
        "gzip before chunked",
        "POST {path} HTTP/1.1\r\nHost: cemm\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"0\r\n\r\n",
        allowed=frozenset({REFUSED, NORMALISED}),
        refusal=frozenset({400, 501}),
    ),
    Probe(
        "bare CR in a value",
        "GET {path} HTTP/1.1\r\nHost: cemm\r\nX-Evil: a\rContent-Length: 5\r\n\r\n",
    ),
    Probe(
        "bare CR as a line end",
        "GET {path} HTTP/1.1\rHost: cemm\r\n\r\n",
    ),
    Probe(
        "bare LF line ends",
        "GET {path} HTTP/1.1\nHost: cemm\nX-Lf: 1\n\n",
        allowed=frozenset({REFUSED, NORMALISED}),
    ),
    Probe(
        "NUL in a value",
        "GET {path} HTTP/1.1\r\nHost: cemm\r\nX-Evil: a\0b\r\n\r\n",
    ),
    Probe(
        "NUL in a name",
        "GET {path} HTTP/1.1\r\nHost: cemm\r\nX-E\0vil: ab\r\n\r\n",
    ),
    Probe(
        "invalid chunk size",
        "POST {path} HTTP/1.1\r\nHost: cemm\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"zz\r\nhello\r\n0\r\n\r\n",
    ),
    Probe(
        "negative chunk size",
        "POST {path} HTTP/1.1\r\nHost: cemm\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
    ),
    Probe(
        "0x chunk size",
        "POST {path} HTTP/1.1\r\nHost: cemm\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
    ),
    Probe(
        # A 2**64+5 byte chunk: a parser that wraps around would read 5 and then see the
        # smuggled request. mitmproxy reads it as the huge size and re-frames what it
        # streams on, so the CEMM sees one chunk with these bytes as data.
        "overflowing chunk size",
        "POST {path} HTTP/1.1\r\nHost: cemm\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"10000000000000005\r\nhello\r\n0\r\n\r\n" + SMUGGLED.encode(),
        allowed=frozenset({REFUSED, NORMALISED}),
        complete=False,
    ),
    Probe(
        "chunk size with a space",
        "POST {path} HTTP/1.1\r\nHost: cemm\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"5 \r\nhello\r\n0\r\n\r\n",
        allowed=frozenset({REFUSED, NORMALISED}),
    ),
    Probe(
        "chunked under HTTP/1.0",
        "POST {path} HTTP/1.0\r\nHost: cemm\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"0\r\n\r\n" + SMUGGLED.encode(),
        allowed=frozenset({REFUSED, NORMALISED}),
    ),
    Probe(
        "a space in the request line",
        "GET {path} x HTTP/1.1\r\nHost: cemm\r\n\r\n",
    ),
    Probe(
        "no Host",
        "GET {path} HTTP/1.1\r\n\r\n",
        allowed=frozenset({REFUSED, NORMALISED}),
    ),
    Probe(
        "two Hosts",
        "GET {path} HTTP/1.1\r\nHost: cemm\r\nHost: evil.example\r\n\r\n",
        allowed=frozenset({REFUSED, NORMALISED}),
    ),
]


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayConfig, GatewayProcess, SimulatorThread]]:
    simulator = SimulatorThread()
    config = GatewayConfig(
        tmp_path_factory.mktemp("smuggling") / "gw",
        upstream_http_port=simulator.http_port,
        upstream_ws_port=simulator.ws_port,
        extra=TRUSTED_LOOPBACK,  # nothing else stands between a probe and the CEMM
    )
    gateway = GatewayProcess(config)
    yield config, gateway, simulator
    gateway.close()
    simulator.close()


def _exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, then read until the gateway closes or goes quiet (bounded)."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        sock.settimeout(1.5)
        deadline = time.monotonic() + 5
        try:
            while time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except OSError:
            pass
    return answer


def _statuses(answer: bytes) -> list[int]:
    statuses = []
    for line in answer.split(b"\r\n"):
        if line.startswith(b"HTTP/1.") and len(line) >= 12 and line[9:12].isdigit():
            statuses.append(int(line[9:12]))
    return statuses


def _ambiguities(headers: tuple[tuple[str, str], ...]) -> list[str]:
    names = [name for name, _ in headers]
    problems = []
    if names.count("content-length") > 1:
        problems.append("several Content-Length")
    if "content-length" in names and "transfer-encoding" in names:
        problems.append("Content-Length and Transfer-Encoding")
    if names.count("transfer-encoding") > 1:
        problems.append("several Transfer-Encoding")
    if names.count("host") > 1:
        problems.append("several Host")
    for name, value in headers:
        if any(c in name + value for c in "\0\r\n"):
            problems.append(f"control character in {name!r}")
        if name != name.strip() or not name:
            problems.append(f"bad name {name!r}")
        if name == "transfer-encoding" and value.strip().lower() != "chunked":
            problems.append(f"Transfer-Encoding {value!r}")
    return problems


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
def test_probe(env, probe: Probe) -> None:
    config, gateway, simulator = env
    marker = uuid.uuid4().hex
    path = f"/_sim/echo?{marker}"
    smuggled = f"/_sim/echo?smuggled-{marker}"
    data = probe.head.format(path=path, smuggled=smuggled).encode() + probe.body
    answer = _exchange(config.http_port, data)
    statuses = _statuses(answer)
    # What got through is recorded by the time a request sent after it has arrived.
    sentinel = f"/_sim/echo?sentinel-{marker}"
    _exchange(
        config.http_port,
        f"GET {sentinel} HTTP/1.1\r\nHost: cemm\r\nConnection: close\r\n\r\n".encode(),
    )
    wait_for(
        lambda: any(f"sentinel-{marker}" in r.query for r in simulator.sim.requests),
        "the sentinel request reaches the CEMM",
    )
    seen = [r for r in simulator.sim.requests if marker in r.query and "sentinel" not in r.query]
    assert not any("smuggled" in r.query for r in seen), "a smuggled request reached the CEMM"

    if seen:
        outcome = NORMALISED
        assert len(seen) == 1, seen
        assert not _ambiguities(seen[0].headers), (_ambiguities(seen[0].headers), seen[0])
        if probe.complete:
            assert statuses[:1] == [200], answer[:300]
        else:
            assert statuses[:1] in ([], [200], [400]), answer[:300]
    else:
        outcome = REFUSED
        # Refused with an answer (or, at worst, a closed connection), never a 2xx.
        assert not statuses or statuses[0] in probe.refusal, answer[:300]
        assert b"mitmproxy" not in answer.lower()
    assert outcome in probe.allowed, (outcome, answer[:300])
    assert gateway.process.poll() is None
