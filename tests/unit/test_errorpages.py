"""The gateway's error pages replace mitmproxy's, which would leak version and errno text."""

from __future__ import annotations

from mitmproxy.proxy.layers.http import _http1

from gateway.proxy import errorpages


def test_install_replaces_mitmproxys_builder() -> None:
    errorpages.PLAIN.install()
    raw = _http1.make_error_response(502, "[Errno 111] Connect call failed ('10.1.2.3', 80)")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502")
    assert b"mitmproxy" not in raw.lower()
    assert b"errno" not in raw.lower()
    assert b"10.1.2.3" not in raw
    assert b"cemm-gateway" in body
    assert b"connection: close" in head.lower()


def test_upstream_description_appears_on_502() -> None:
    pages = errorpages.ErrorPages(describe_upstream=lambda: "The CEMM has not answered.")
    assert b"The CEMM has not answered." in pages.body(502)
    assert b"The CEMM has not answered." not in pages.body(403)
    # The describer belongs to the pages it was given to, not to every page.
    assert b"The CEMM has not answered." not in errorpages.PLAIN.body(502)


def test_installed_pages_describe_the_upstream() -> None:
    pages = errorpages.ErrorPages(describe_upstream=lambda: "The CEMM is switched off.")
    try:
        pages.install()
        assert b"The CEMM is switched off." in _http1.make_error_response(502, "")
    finally:
        errorpages.PLAIN.install()


def test_pages_carry_security_headers() -> None:
    response = errorpages.PLAIN.response(403)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]


def test_unknown_status_still_renders() -> None:
    assert b"418" in errorpages.error_body(418)
    assert b"599" in errorpages.error_body(599)
