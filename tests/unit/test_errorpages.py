"""The gateway's error pages replace mitmproxy's, which would leak version and errno text."""

from __future__ import annotations

from mitmproxy.proxy.layers.http import _http1

from gateway.proxy import errorpages


def test_install_replaces_mitmproxys_builder() -> None:
    errorpages.install()
    raw = _http1.make_error_response(502, "[Errno 111] Connect call failed ('10.1.2.3', 80)")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502")
    assert b"mitmproxy" not in raw.lower()
    assert b"errno" not in raw.lower()
    assert b"10.1.2.3" not in raw
    assert b"cemm-gateway" in body
    assert b"connection: close" in head.lower()


def test_upstream_description_appears_on_502(monkeypatch) -> None:
    monkeypatch.setattr(errorpages, "upstream_describer", lambda: "The CEMM has not answered.")
    assert b"The CEMM has not answered." in errorpages.error_body(502)
    assert b"The CEMM has not answered." not in errorpages.error_body(403)


def test_pages_carry_security_headers() -> None:
    response = errorpages.error_response(403)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]


def test_unknown_status_still_renders() -> None:
    assert b"418" in errorpages.error_body(418)
    assert b"599" in errorpages.error_body(599)
