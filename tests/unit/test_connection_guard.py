"""The connection guard's denial log: a scan from many addresses cannot flood the log."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import tflow

from addons.connection_guard import ConnectionGuard, DenialLog
from addons.connection_registry import ConnectionRegistry
from gateway.proxy.state import (
    Listener,
    ProxyState,
)
from tests.support.proxy_state import proxy_state

WEB = "reverse:http://127.0.0.1:80@8080"


class _Lines:
    """The lines logged so far, compared like a list."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    def __eq__(self, other: object) -> bool:
        return self.caplog.messages == other

    def __len__(self) -> int:
        return len(self.caplog.messages)

    def __getitem__(self, index: Any) -> Any:
        return self.caplog.messages[index]

    def __repr__(self) -> str:
        return repr(self.caplog.messages)


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> _Lines:
    caplog.set_level(logging.WARNING, logger="cemm_gateway.proxy")
    return _Lines(caplog)


def _address(number: int) -> str:
    return f"198.51.{number // 256 % 256}.{number % 256}"


def test_a_scan_from_many_addresses_writes_a_bounded_number_of_lines(lines: _Lines) -> None:
    log = DenialLog(interval=60.0, lines=20)
    # 10,000 denials from 5,000 addresses in 5 s: each address twice.
    for number in range(10_000):
        log.denied(_address(number % 5_000), "not_allowlisted", "web", now=number * 0.0005)
    assert len(lines) == 20
    assert lines[0] == "denied 198.51.0.0 on the web port: not_allowlisted"
    assert log.next_flush() == 60.0
    log.flush(now=59.9)  # the interval has not ended
    assert len(lines) == 20
    log.flush(now=60.0)
    assert lines[20:] == [
        "9980 more denials (not_allowlisted) from 5000 addresses in the last 60 s"
    ]
    assert log.next_flush() is None


def test_one_summary_line_per_reason(lines: _Lines) -> None:
    log = DenialLog(interval=60.0, lines=2)
    for number in range(6):
        log.denied(_address(number), "not_allowlisted", "web", now=1.0)
    log.denied("2001:db8::1", "bad_address", "ws", now=2.0)
    log.denied("2001:db8::1", "bad_address", "ws", now=3.0)
    log.flush(now=61.0)
    assert lines == [
        "denied 198.51.0.0 on the web port: not_allowlisted",
        "denied 198.51.0.1 on the web port: not_allowlisted",
        "4 more denials (not_allowlisted) from 4 addresses in the last 60 s",
        "2 more denials (bad_address) from 1 address in the last 60 s",
    ]


def test_an_address_denied_again_is_counted_and_logged_again_an_interval_later(
    lines: _Lines,
) -> None:
    log = DenialLog(interval=60.0, lines=20)
    for second in range(5):
        log.denied("203.0.113.7", "not_allowlisted", "web", now=float(second))
    assert lines == ["denied 203.0.113.7 on the web port: not_allowlisted"]
    # The next denial, after the interval, writes the summary first: nothing is lost.
    log.denied("203.0.113.7", "not_allowlisted", "web", now=75.0)
    assert lines[1:] == [
        "4 more denials (not_allowlisted) from 1 address in the last 60 s",
        "denied 203.0.113.7 on the web port: not_allowlisted",
    ]
    log.denied("203.0.113.7", "not_allowlisted", "web", now=76.0)
    assert log.next_flush() == 135.0


def test_memory_is_bounded_and_emptied_by_the_summary(lines: _Lines) -> None:
    log = DenialLog(interval=60.0, lines=20, max_addresses=1_000)
    for number in range(50_000):
        log.denied(f"2001:db8::{number:x}", "not_allowlisted", "web", now=number * 0.001)
    assert log.tracked() <= 20 + 1_000
    log.flush(now=60.0)
    assert lines[-1] == (
        "49980 more denials (not_allowlisted) from at least 1000 addresses in the last 60 s"
    )
    # What was logged in the last interval is forgotten once it is older than one.
    log.denied("203.0.113.7", "not_allowlisted", "web", now=200.0)
    assert log.tracked() == 1


def test_a_quiet_interval_writes_nothing(lines: _Lines) -> None:
    log = DenialLog(interval=60.0, lines=20)
    log.denied("203.0.113.7", "not_allowlisted", "web", now=0.0)
    assert log.next_flush() is None  # nothing pending, no summary to write
    log.flush(now=120.0)
    assert lines == ["denied 203.0.113.7 on the web port: not_allowlisted"]


def _state() -> ProxyState:
    return proxy_state({WEB: Listener("web", 8080, WEB)})


def _client(address: str) -> Any:
    client = tflow.tclient_conn()
    client.peername = (address, 40000)
    client.proxy_mode = ProxyMode.parse(WEB)
    return client


def test_the_guard_writes_the_summary_when_the_interval_ends(lines: _Lines) -> None:
    state = _state()
    guard = ConnectionGuard(state, ConnectionRegistry(state), DenialLog(interval=0.2, lines=1))

    async def scan() -> None:
        for number in range(5):
            guard.client_connected(_client(_address(number)))
        assert lines == ["denied 198.51.0.0 on the web port: not_allowlisted"]
        await asyncio.sleep(0.4)  # no further denial: the timer writes the summary

    asyncio.run(scan())
    assert lines[1:] == ["4 more denials (not_allowlisted) from 4 addresses in the last 0.2 s"]
    assert state.denials["not_allowlisted"] == 5  # every denial is counted for the metrics


def test_the_guard_writes_what_is_pending_when_the_proxy_stops(lines: _Lines) -> None:
    state = _state()
    guard = ConnectionGuard(state, ConnectionRegistry(state), DenialLog(interval=60.0, lines=1))
    guard.client_connected(_client("203.0.113.7"))
    guard.client_connected(_client("203.0.113.7"))
    guard.done()
    assert lines[1:] == ["1 more denial (not_allowlisted) from 1 address in the last 60 s"]
