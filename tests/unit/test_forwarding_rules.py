"""Pure helpers of the forwarding and request-limit addons."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mitmproxy import http
from mitmproxy.net.http.http1.read import read_request_head
from mitmproxy.test import tutils

from addons.client_address import forwarding_headers
from addons.forwarding import forwarded_fields, rewrite_location
from addons.request_limits import head_size, malformed_header, normalise_target
from gateway.auth import tokens
from gateway.policy.forwarded import CLIENT_SUPPLIED_HEADERS

UPSTREAM = ("192.168.2.34", 80)
NAME = "cemm_session"


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


TOKEN = tokens.new_api_token()[0]


def test_forwarded_fields_drop_what_the_cemm_must_not_see() -> None:
    fields = (
        (b"Host", b"cemm.local"),
        (b"X-Forwarded-For", b"203.0.113.9"),
        (b"forwarded", b"for=203.0.113.9"),
        (b"X-Real-IP", b"203.0.113.9"),
        (b"X-Cemm-Gateway-Internal", b"guess"),
        (b"Sec-WebSocket-Extensions", b"permessage-deflate; client_max_window_bits"),
        (b"Cookie", b"theme=dark; cemm_session=secret; lang=nl"),
        (b"Authorization", f"Bearer {TOKEN}".encode()),
        (b"Accept", b"*/*"),
    )
    out = forwarded_fields(fields, [("X-Forwarded-For", "192.0.2.7")], session_cookie=NAME)
    assert out == (
        (b"Host", b"cemm.local"),
        (b"Cookie", b"theme=dark; lang=nl"),
        (b"Accept", b"*/*"),
        (b"X-Forwarded-For", b"192.0.2.7"),
    )


@pytest.mark.parametrize("name", sorted(CLIENT_SUPPLIED_HEADERS))
def test_no_client_supplied_forwarding_or_override_header_is_forwarded(name: str) -> None:
    for spelling in (name, name.upper(), name.title()):
        fields = ((spelling.encode(), b"203.0.113.9"), (b"Accept", b"*/*"))
        assert forwarded_fields(fields, [], session_cookie=NAME) == ((b"Accept", b"*/*"),)
        assert forwarded_fields(fields, [], session_cookie=None) == ((b"Accept", b"*/*"),)


@pytest.mark.parametrize(
    "name",
    [
        "X-Real-IP",
        "X-Client-IP",
        "True-Client-IP",
        "CF-Connecting-IP",
        "X-Original-URL",
        "X-Rewrite-URL",
        "X-HTTP-Method-Override",
        "X-HTTP-Method",
        "X-Method-Override",
    ],
)
def test_the_headers_a_review_found_forwarded_are_listed(name: str) -> None:
    assert name.lower() in CLIENT_SUPPLIED_HEADERS


@pytest.mark.parametrize(
    ("target", "method", "path", "host", "ok"),
    [
        ("http://x/", "GET", "/", "x", True),
        ("http://gw.example:8443/a?b=c", "GET", "/a?b=c", "gw.example:8443", True),
        ("/plain", "GET", "/plain", "h", True),
        ("*", "OPTIONS", "*", "h", True),
        ("*", "GET", "*", "h", False),
    ],
)
def test_request_targets_become_origin_form(
    target: str, method: str, path: str, host: str, ok: bool
) -> None:
    request = read_request_head([f"{method} {target} HTTP/1.1\r\n".encode(), b"Host: h\r\n"])
    assert normalise_target(request) is ok
    assert request.authority == ""
    assert (request.path, request.host_header) == (path, host)


@pytest.mark.parametrize(
    ("head", "ok"),
    [
        ([b"GET / HTTP/1.1\r\n", b"Host: h\r\n"], True),
        ([b"GET / HTTP/1.1\r\n"], False),  # HTTP/1.1 needs a Host
        ([b"GET / HTTP/1.0\r\n"], True),
        ([b"GET / HTTP/1.1\r\n", b"Host: h\r\n", b"Host: evil.example\r\n"], False),
        ([b"GET / HTTP/1.0\r\n", b"Host: h\r\n", b"Host: h\r\n"], False),
        ([b"GET http://x/ HTTP/1.1\r\n", b"Host: h\r\n", b"Host: i\r\n"], True),
    ],
)
def test_exactly_one_host(head: list[bytes], ok: bool) -> None:
    assert normalise_target(read_request_head(head)) is ok


def test_forwarded_fields_for_the_admin_app_keep_credentials() -> None:
    fields = ((b"Cookie", b"cemm_session=secret"), (b"Authorization", f"Bearer {TOKEN}".encode()))
    assert forwarded_fields(fields, [], session_cookie=None) == fields


def test_a_cookie_header_with_only_the_session_is_dropped() -> None:
    out = forwarded_fields(((b"cookie", b"cemm_session=secret"),), [], session_cookie=NAME)
    assert out == ()


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer someone-elses-token", "cgw_x"])
def test_other_authorization_reaches_the_cemm(value: str) -> None:
    fields = ((b"Authorization", value.encode()),)
    assert forwarded_fields(fields, [], session_cookie=NAME) == fields


@given(
    scheme=st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Bearer\t", ""]),
    before=st.sampled_from(["", " ", "  ", "\t", "\x1c", "\u2003"]),
    after=st.sampled_from(["", " ", "\t", "\x1f", "\u00a0"]),
)
def test_every_api_token_the_gateway_accepts_is_removed(
    scheme: str, before: str, after: str
) -> None:
    header = f"{scheme} {before}{TOKEN}{after}"
    fields = ((b"Authorization", header.encode("utf-8", "surrogateescape")),)
    facts_scheme, _, value = header.partition(" ")
    accepted = facts_scheme.lower() == "bearer" and tokens.parse_api_token(value.strip())
    # Removed whenever the gateway would accept it; other Authorization values pass.
    assert (forwarded_fields(fields, [], session_cookie=NAME) == ()) == bool(accepted)


field_name = st.sampled_from(
    [b"Forwarded", b"X-Forwarded-For", b"x-forwarded-proto", b"X-FORWARDED-HOST", b"Host", b"X"]
)


@given(st.lists(st.tuples(field_name, st.binary(max_size=20)), max_size=8))
def test_forwarding_headers_read_like_get_all(fields: list[tuple[bytes, bytes]]) -> None:
    headers = http.Headers(fields)
    found = forwarding_headers(headers.fields)
    for name in ("forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"):
        assert found[name.encode()] == headers.get_all(name)


def _malformed_reference(fields: list[tuple[bytes, bytes]]) -> bool:
    """The rule, spelled out byte by byte."""
    for name, value in fields:
        if not name or any(byte in b" \t:\x00\r\n" for byte in name):
            return True
        if any(byte in b"\x00\r\n" for byte in value):
            return True
        if value[:1] in (b" ", b"\t") and value.strip() == b"":
            return True
    return False


header_bytes = st.binary(max_size=6).map(lambda b: b.replace(b"\x01", b" "))


@given(st.lists(st.tuples(header_bytes, header_bytes), max_size=4))
def test_malformed_header_matches_the_rule(fields: list[tuple[bytes, bytes]]) -> None:
    request = tutils.treq()
    request.headers.fields = tuple(fields)
    assert malformed_header(request) == _malformed_reference(fields)
