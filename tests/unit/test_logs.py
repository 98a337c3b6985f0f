"""Structured logs: request ids, JSON lines, and no credentials in any line."""

from __future__ import annotations

import json
import logging

import pytest

from gateway import logs


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("request headers: Cookie: cemm_session=abcdefSECRET1; theme=dark", "abcdefSECRET1"),
        ("{'cookie': 'cemm_session=SECRET2xyz'}", "SECRET2xyz"),
        ("set-cookie: __Host-cemm_session=SECRET3abc; Path=/", "SECRET3abc"),
        ("authorization: Bearer SECRET4abcdef", "SECRET4abcdef"),
        ("token cgw_ab12cd34_SECRET5aaaaaaaaaaaaaaaaaaaa used", "SECRET5"),
        ("GET /.gateway/oidc/callback?code=SECRET6abc&state=SECRET7abc", "SECRET6abc"),
        ("GET /.gateway/oidc/callback?code=SECRET6abc&state=SECRET7abc", "SECRET7abc"),
        ("login with password=SECRET8pass failed", "SECRET8pass"),
        ('{"client_secret": "SECRET9abc"}', "SECRET9abc"),
        ("scrape_token=SECRET10abcdef", "SECRET10abcdef"),
        ("X-Cemm-Gateway-Internal: SECRET11abcdef", "SECRET11abcdef"),
        ("proxy sent cemm_session=SECRET12abc to nobody", "SECRET12abc"),
        ("GET /.gateway/peer/SECRET13abcdef 200", "SECRET13abcdef"),
        ('"path": "/.gateway/peer/SECRET14abcdef/qr"', "SECRET14abcdef"),
    ],
)
def test_redact_blanks_credentials(line: str, secret: str) -> None:
    redacted = logs.redact(line)
    assert secret not in redacted
    assert logs.REDACTED in redacted


@pytest.mark.parametrize(
    "line",
    [
        "the CEMM (MAC 80:1F:12:47:06:B0) moved from 192.168.2.34 to 192.168.2.51",
        "policy reloaded (generation 4); closed 2 connection(s)",
        "denied 203.0.113.7 on the web port: not_allowlisted",
        "GET /api/v1/public/cemm 200",
        "tokens revoked: 3",
    ],
)
def test_redact_leaves_ordinary_lines_alone(line: str) -> None:
    assert logs.redact(line) == line


def test_registered_secret_is_never_written() -> None:
    logs.register_secret("plain-scrape-token-value")
    assert logs.redact("token is plain-scrape-token-value!") == "token is [redacted]!"


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("cemm_gateway.access", logging.INFO, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_lines_carry_request_id_and_fields() -> None:
    token = logs.request_id.set("a1b2c3d4e5f6")
    try:
        line = logs.JsonLinesFormatter().format(
            _record("GET /x 200", fields={"status": 200, "path": "/x?token=SECRETq1"})
        )
    finally:
        logs.request_id.reset(token)
    entry = json.loads(line)
    assert entry["request_id"] == "a1b2c3d4e5f6"
    assert entry["status"] == 200 and entry["logger"] == "cemm_gateway.access"
    assert "SECRETq1" not in line


def test_explicit_request_id_wins_and_text_shows_it() -> None:
    text = logs.TextFormatter().format(_record("hello", request_id="0123456789ab"))
    assert text.endswith("hello [req=0123456789ab]")
    assert "request_id" not in json.loads(logs.JsonLinesFormatter().format(_record("x")))


def test_exceptions_are_redacted_too() -> None:
    try:
        raise ValueError("bad header Authorization: Bearer SECRETexc123")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "SECRETexc123" not in logs.JsonLinesFormatter().format(record)
    assert "SECRETexc123" not in logs.TextFormatter().format(record)


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/.gateway/peer/SECRETabc", "/.gateway/peer/[redacted]"),
        ("/.gateway/peer/SECRETabc?download=1", "/.gateway/peer/[redacted]"),
        # The web app decodes the path before routing: so does the check.
        ("/.gateway/%70eer/SECRETabc", "/.gateway/peer/[redacted]"),
        ("/.gateway/peer%2FSECRETabc", "/.gateway/peer/[redacted]"),
        ("/instellingen?token=x", "/instellingen"),
        ("/.gateway/login", "/.gateway/login"),
        # An ACME challenge token: its first eight characters, in every log alike.
        (
            "/.well-known/acme-challenge/evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA",
            "/.well-known/acme-challenge/evaGxfAD[redacted]",
        ),
        (
            "/.well-known/acme-challenge/evaGxfADs6pSRb2L?x=1",
            "/.well-known/acme-challenge/evaGxfAD[redacted]",
        ),
        (
            "/.well-known/%61cme-challenge/evaGxfADs6pSRb2L",
            "/.well-known/acme-challenge/evaGxfAD[redacted]",
        ),
        ("/.well-known/acme-challenge/short", "/.well-known/acme-challenge/short"),
    ],
)
def test_loggable_path_hides_one_time_link_secrets(path: str, logged: str) -> None:
    assert logs.loggable_path(path) == logged
