"""The one upgrade rule (gateway/policy/upgrade.py): every spelling of ``Upgrade`` read as
RFC 9110 and mitmproxy read it, and what is forwarded says exactly what was decided."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.policy.upgrade import (
    forwarded_connection,
    requested_upgrade,
    switch_allowed,
    upgrade_elements,
)

CASES = [
    # (every Upgrade line, expected kind)
    ([], "none"),
    ([""], "none"),
    ([" , ,"], "none"),
    (["websocket"], "websocket"),
    (["WebSocket"], "websocket"),
    (["websocket,"], "websocket"),
    ([",websocket"], "websocket"),
    ([" websocket \t"], "websocket"),
    (["websocket", "websocket"], "websocket"),
    (["websocket, WEBSOCKET"], "websocket"),
    (["", "websocket"], "websocket"),
    (["h2c"], "other"),
    (["HTTP/2.0"], "other"),
    (["TLS/1.2"], "other"),
    (["websocket/13"], "other"),
    (["websocket, h2c"], "other"),
    (["h2c, websocket"], "other"),
    (["websocket", "h2c"], "other"),
    (["websocketx"], "other"),
    (["web socket"], "other"),
]


@pytest.mark.parametrize(("lines", "kind"), CASES)
def test_requested_upgrade(lines: list[str], kind: str) -> None:
    assert requested_upgrade(lines) == kind


def test_elements_are_split_stripped_and_lowered() -> None:
    assert upgrade_elements(["WebSocket, , h2c", " TLS/1.2 "]) == ["websocket", "h2c", "tls/1.2"]


@pytest.mark.parametrize(
    ("lines", "kind", "forwarded"),
    [
        ([], "none", None),
        (["Upgrade"], "none", None),
        (["keep-alive, Upgrade"], "none", "keep-alive"),
        (["upgrade ,keep-alive", "close"], "none", "keep-alive, close"),
        (["Upgrade"], "websocket", "Upgrade"),
        ([], "websocket", "Upgrade"),
        (["keep-alive, UPGRADE"], "websocket", "keep-alive, Upgrade"),
    ],
)
def test_forwarded_connection(lines: list[str], kind: str, forwarded: str | None) -> None:
    assert forwarded_connection(lines, kind) == forwarded  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "admitted", "answer", "allowed"),
    [
        ("websocket", True, "websocket", True),
        ("websocket", True, " WebSocket ", True),
        ("websocket", False, "websocket", False),  # not admitted (refused or not registered)
        ("websocket", True, "h2c", False),
        ("websocket", True, "", False),
        ("none", True, "websocket", False),  # a 101 to a request that asked for nothing
        ("other", True, "h2c", False),
        (None, False, "websocket", False),
    ],
)
def test_switch_allowed(kind: str | None, admitted: bool, answer: str, allowed: bool) -> None:
    assert switch_allowed(kind, admitted, answer) is allowed  # type: ignore[arg-type]


_ELEMENT = st.sampled_from(
    ["websocket", "WebSocket", "WEBSOCKET", "h2c", "websocket/13", "TLS/1.2", "", " ", "\t"]
)
_LINE = st.lists(_ELEMENT, max_size=3).map(",".join)


@settings(derandomize=True, max_examples=200)
@given(st.lists(_LINE, max_size=3))
@example([" websocket,"])
def test_kind_matches_an_independent_reading(lines: list[str]) -> None:
    """Checked against a second, plainly written reading of RFC 9110's list syntax."""
    names = [part.strip().lower() for line in lines for part in line.split(",")]
    names = [name for name in names if name]
    expected = "none" if not names else "websocket" if set(names) == {"websocket"} else "other"
    assert requested_upgrade(lines) == expected
    # What is forwarded never leaves an upgrade the gateway did not decide.
    connection = forwarded_connection(["keep-alive, upgrade"], requested_upgrade(lines)) or ""
    assert ("Upgrade" in connection) == (expected == "websocket")
