"""The gateway menu on CEMM pages: which answers get it, and how a CEMM policy is widened."""

from __future__ import annotations

import pytest
from mitmproxy import http
from mitmproxy.test import tflow

from addons.authentication import TO_APP
from addons.base import DENIED
from addons.gateway_menu import SCRIPT_PATH, GatewayMenu, menu_csp
from addons.page_fixup import FIXUP
from tests.support.proxy_state import proxy_state

H = "'sha256-abc='"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            "default-src 'self'",
            "default-src 'self'; script-src 'self' " + H + "; connect-src 'self'",
        ),
        (
            "default-src 'none'; style-src 'self'; form-action 'none'",
            f"default-src 'none'; style-src 'self'; form-action 'self'; script-src 'self' {H}; "
            "connect-src 'self'",
        ),
        ("frame-ancestors 'none'", "frame-ancestors 'none'"),
        (
            "script-src 'self'; script-src-elem 'nonce-a'; form-action https://x.example",
            f"script-src 'self' {H}; script-src-elem 'nonce-a' 'self' {H}; "
            "form-action https://x.example 'self'",
        ),
    ],
)
def test_menu_csp(policy: str, expected: str) -> None:
    assert menu_csp(policy, "sha256-abc=") == expected


def _flow(
    content_type: str = "text/html; charset=utf-8", status: int = 200, method: str = "GET"
) -> http.HTTPFlow:
    flow = tflow.tflow()
    flow.request.method = method
    flow.response = http.Response.make(
        status,
        b"<!doctype html><html><head><title>CEMM</title></head><body></body></html>",
        {"Content-Type": content_type, "Content-Security-Policy": "script-src 'self'"},
    )
    return flow


def _run(menu: GatewayMenu, flow: http.HTTPFlow) -> bytes:
    menu.responseheaders(flow)
    menu.response(flow)
    assert flow.response is not None
    return flow.response.content or b""


def test_an_html_page_gets_the_menu_and_its_hash_in_the_policy() -> None:
    menu = GatewayMenu(proxy_state())
    flow = _flow()
    page = _run(menu, flow)
    assert page.startswith(b'<!doctype html><html><head><script src="' + SCRIPT_PATH.encode())
    assert flow.metadata[FIXUP]  # buffered, never streamed
    assert flow.response is not None
    assert flow.response.headers["content-security-policy"] == (
        f"script-src 'self' '{menu.integrity}'"
    )


@pytest.mark.parametrize(
    ("flow", "metadata"),
    [
        (_flow("application/json"), {}),
        (_flow("text/css"), {}),
        (_flow(status=404), {}),
        (_flow(method="HEAD"), {}),
        (_flow(), {DENIED: "not_allowed"}),
        (_flow(), {TO_APP: True}),
    ],
)
def test_other_answers_pass_unchanged(flow: http.HTTPFlow, metadata: dict[str, object]) -> None:
    flow.metadata.update(metadata)
    assert flow.response is not None
    before = (flow.response.content, flow.response.headers.fields)
    _run(GatewayMenu(proxy_state()), flow)
    assert (flow.response.content, flow.response.headers.fields) == before
    assert FIXUP not in flow.metadata
