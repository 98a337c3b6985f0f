"""The CEMM page fix-up: where the script goes, and how a CEMM policy is widened."""

from __future__ import annotations

import pytest
from mitmproxy import http
from mitmproxy.test import tflow

from addons.page_fixup import PageFixup, adjust_csp, inject, script_integrity, script_tag
from tests.support.proxy_state import proxy_state

TAG = b'<script src="/.gateway/static/ws-fixup.js"></script>'
H = "'sha256-abc='"


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (
            b"<html><head><title>x</title></head></html>",
            b"<html><head>" + TAG + b"<title>x</title></head></html>",
        ),
        (
            b'<!doctype html><HTML lang="nl"><HEAD data-x="1"><script src=a.js></script>',
            b'<!doctype html><HTML lang="nl"><HEAD data-x="1">'
            + TAG
            + b"<script src=a.js></script>",
        ),
        (b"<html><body>no head</body></html>", b"<html>" + TAG + b"<body>no head</body></html>"),
        (b"<p>fragment</p>", TAG + b"<p>fragment</p>"),
        (b"<header>not head</header><head>", b"<header>not head</header><head>" + TAG),
    ],
)
def test_inject(page: bytes, expected: bytes) -> None:
    assert inject(page, TAG) == expected


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            "default-src 'self'",
            f"default-src 'self'; script-src 'self' {H}; connect-src 'self' wss://gw.example",
        ),
        (
            "script-src 'nonce-r4nd0m' 'strict-dynamic'; connect-src https://api.example",
            f"script-src 'nonce-r4nd0m' 'strict-dynamic' 'self' {H}; "
            "connect-src https://api.example 'self' wss://gw.example",
        ),
        (
            "default-src 'none'; img-src data:",
            f"default-src 'none'; img-src data:; script-src 'self' {H}; "
            "connect-src 'self' wss://gw.example",
        ),
        ("frame-ancestors 'none'", "frame-ancestors 'none'"),
        ("script-src 'none'", f"script-src 'self' {H}"),
        (
            "script-src 'self'; script-src-elem 'nonce-abc'; connect-src 'self'",
            f"script-src 'self' {H}; script-src-elem 'nonce-abc' 'self' {H}; "
            "connect-src 'self' wss://gw.example",
        ),
    ],
)
def test_adjust_csp(policy: str, expected: str) -> None:
    assert adjust_csp(policy, integrity="sha256-abc=", ws_origin="wss://gw.example") == expected


def test_script_tag_carries_integrity_and_ports() -> None:
    integrity = script_integrity(b"console.log(1)")
    tag = script_tag(integrity, [8090, 18090])
    assert f'integrity="{integrity}"' in tag.decode()
    assert 'data-ws-ports="8090,18090"' in tag.decode()


def test_both_policy_headers_are_widened_on_a_fixed_up_page() -> None:
    state = proxy_state(host="127.0.0.1", page_port=80)
    fixup = PageFixup(state, ws_ports=[8090])
    flow = tflow.tflow()
    flow.response = http.Response.make(
        200,
        b"<html><head></head></html>",
        {
            "Content-Type": "text/html",
            "Content-Security-Policy": "script-src 'self'",
            # A report-only policy would otherwise report the script on every page view.
            "Content-Security-Policy-Report-Only": "script-src-elem 'none'",
        },
    )
    fixup.responseheaders(flow)
    fixup.response(flow)
    integrity = f"'{fixup.integrity}'"
    assert flow.response.headers["content-security-policy"] == f"script-src 'self' {integrity}"
    assert (
        flow.response.headers["content-security-policy-report-only"]
        == f"script-src-elem 'self' {integrity}"
    )
    assert b"ws-fixup.js" in flow.response.content
