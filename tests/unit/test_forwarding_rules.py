"""Pure helpers of the forwarding and request-limit addons."""

from __future__ import annotations

import pytest
from mitmproxy.test import tutils

from addons.forwarding import rewrite_location
from addons.request_limits import head_size, malformed_header

UPSTREAM = ("192.168.2.34", 80)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("http://192.168.2.34/instellingen", "https://cemm.example.org/instellingen"),
        ("http://192.168.2.34:80/a?b=c#d", "https://cemm.example.org/a?b=c#d"),
        ("http://192.168.2.34", "https://cemm.example.org/"),
        ("/relative/path", "/relative/path"),
        ("http://elsewhere.example/x", "http://elsewhere.example/x"),
        ("http://192.168.2.34:8090/x", "http://192.168.2.34:8090/x"),
        ("ws://192.168.2.34/live", "wss://cemm.example.org/live"),
        ("http://[::1/broken", "http://[::1/broken"),
        ("javascript:alert(1)", "javascript:alert(1)"),
    ],
)
def test_rewrite_location(location: str, expected: str) -> None:
    assert (
        rewrite_location(
            location, upstream=UPSTREAM, original_host="cemm.example.org", original_scheme="https"
        )
        == expected
    )


def test_rewrite_location_without_known_host_becomes_relative() -> None:
    assert (
        rewrite_location(
            "http://192.168.2.34/x?y", upstream=UPSTREAM, original_host="", original_scheme="http"
        )
        == "/x?y"
    )


def test_head_size_counts_every_header() -> None:
    request = tutils.treq()
    small = head_size(request)
    request.headers["x-big"] = "a" * 20000
    assert head_size(request) >= small + 20000


@pytest.mark.parametrize("value", [b"a\x00b", b"a\rb", b"a\nb", b"a\r\n b"])
def test_control_bytes_in_header_values_are_malformed(value: bytes) -> None:
    request = tutils.treq()
    request.headers.fields = (*request.headers.fields, (b"x-test", value))
    assert malformed_header(request)


def test_ordinary_headers_are_fine() -> None:
    request = tutils.treq()
    request.headers["cookie"] = "a=b; c=d"
    assert not malformed_header(request)
