"""Plain words: audit entries, refusal counters and failed logins as sentences, lengths of
time in words, and a session's browser as a person names it."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.admin.rendering import relative
from gateway.services.audit import AuditEntry
from gateway.web.browsers import browser_name
from gateway.web.sentences import (
    _EVENTS,
    audit_sentence,
    duration,
    failed_logins_sentence,
    refusal_sentence,
)

ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
MAC_SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15"
)
LINUX_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def _entry(event: str, actor: str = "anna", address: str | None = None, **detail: Any):
    return AuditEntry(1, 0.0, actor, event, address, None, detail)


@pytest.mark.parametrize(
    ("entry", "sentence"),
    [
        (
            _entry("login.failure", address="192.168.1.20"),
            "Wrong password or code for anna from 192.168.1.20",
        ),
        (_entry("login", address="192.168.1.20"), "anna logged in from 192.168.1.20"),
        (_entry("login"), "anna logged in from an unknown address"),
        (_entry("logout"), "anna logged out"),
        (
            _entry("allowlist.add", actor="cli:root", network="10.0.0.0/8"),
            "The command line (root) added 10.0.0.0/8 to the allowlist",
        ),
        (
            _entry("user.role", actor="admin", user="bob", role="viewer"),
            "admin made bob viewer",
        ),
        (_entry("upstream.down", actor="system"), "The CEMM stopped answering"),
        (
            _entry("user.add", actor="system:first-start", user="admin", role="admin"),
            "The gateway added the user admin (admin)",
        ),
        (_entry("peer.add"), "anna added the VPN peer ?"),  # a detail missing: "?"
        (_entry("something.new", actor="-"), "Someone: something.new"),
    ],
)
def test_audit_sentence(entry: AuditEntry, sentence: str) -> None:
    assert audit_sentence(entry) == sentence


def test_every_known_event_makes_a_sentence_without_details() -> None:
    for event in _EVENTS:
        assert audit_sentence(_entry(event))


@pytest.mark.parametrize(
    ("reason", "count", "sentence"),
    [
        ("not_allowlisted", 1, "1 connection from an address not on the allowlist"),
        ("not_allowlisted", 12, "12 connections from addresses not on the allowlist"),
        ("no_credentials", 3, "3 requests without a login"),
        ("foreign_origin", 1, "1 request from another web site"),
        ("headers_too_large", 2, "2 refused: headers too large"),
    ],
)
def test_refusal_sentence(reason: str, count: int, sentence: str) -> None:
    assert refusal_sentence(reason, count) == sentence


def test_failed_logins_sentence() -> None:
    assert (
        failed_logins_sentence("anna", "192.168.1.20", 1)
        == "Wrong password or code for anna from 192.168.1.20"
    )
    assert (
        failed_logins_sentence("anna", None, 4)
        == "Wrong password or code for anna from an unknown address, 4 times"
    )


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 seconds"),
        (1, "1 second"),
        (59.9, "59 seconds"),
        (60, "1 minute"),
        (900, "15 minutes"),
        (3600, "1 hour"),
        (36 * 3600, "36 hours"),
        (2 * 86400, "2 days"),
        (30 * 86400 + 5, "30 days"),
        (-5, "0 seconds"),
    ],
)
def test_duration(seconds: float, words: str) -> None:
    assert duration(seconds) == words


def test_relative_uses_whole_words() -> None:
    assert relative(1000.0 - 900, now=1000.0) == "15 minutes ago"
    assert relative(1000.0 + 7200, now=1000.0) == "in 2 hours"
    assert relative(1000.0 - 10, now=1000.0) == "just now"
    assert relative(None) == "never"


@pytest.mark.parametrize(
    ("agent", "name"),
    [
        (ANDROID_CHROME, "Chrome on Android"),
        (IPHONE_SAFARI, "Safari on iOS"),
        (MAC_SAFARI, "Safari on macOS"),
        (LINUX_FIREFOX, "Firefox on Linux"),
        ("curl/8.5.0", "curl"),
        ("python-httpx/0.27.0", "python-httpx"),
        ("", "Unknown device"),
        (None, "Unknown device"),
        ("-", "Unknown device"),
    ],
)
def test_browser_name(agent: str | None, name: str) -> None:
    assert browser_name(agent) == name
