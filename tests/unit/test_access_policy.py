"""The per-request access decision, as plain data in and out."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.auth import tokens
from gateway.policy.access import AccessConfig, RequestFacts, decide_request, origin_allowed
from gateway.policy.allowlist import CompiledAllowlist
from gateway.policy.credentials import ApiTokenInfo, AuthSnapshot, SessionInfo

NOW = 1_800_000_000.0
SESSION_TOKEN = "s" * 43
API_SECRET = "A" * 43
API_TOKEN = f"cgw_abcd1234_{API_SECRET}"

SESSION = SessionInfo(
    id="sess1",
    user_id=1,
    user_name="anna",
    role="user",
    csrf_token="c",
    created_at=NOW - 100,
    last_seen_at=NOW - 100,
    expires_at=NOW + 10_000,
    client_address=None,
    user_agent=None,
)
TOKEN = ApiTokenInfo(
    id="abcd1234",
    user_id=1,
    user_name="anna",
    role="user",
    name="ha",
    secret_hash=tokens.token_hash(API_SECRET),
    read_only=True,
    created_at=NOW,
    expires_at=None,
    last_used_at=None,
)
AUTH = AuthSnapshot(
    sessions={tokens.token_hash(SESSION_TOKEN): SESSION},
    api_tokens={TOKEN.id: TOKEN},
    idle_timeout=3600,
)
CONFIG = AccessConfig(
    trusted_networks=CompiledAllowlist.from_networks(["192.168.1.0/24"]),
    public_hostnames=frozenset({"cemm.example.org"}),
    web_port=80,
)
BASE = RequestFacts(
    listener="web",
    method="GET",
    path="/api/v1/public/cemm",
    client_address="203.0.113.5",
    scheme="http",
    host="gateway.lan",
    origin=None,
    websocket=False,
    navigation=False,
    session_token=None,
    authorization=None,
)


def decide(**changes: object):
    return decide_request(dataclasses.replace(BASE, **changes), CONFIG, AUTH, {}, now=NOW)


@pytest.mark.parametrize(
    ("changes", "kind", "reason"),
    [
        ({}, "unauthorized", "no_credentials"),
        ({"navigation": True}, "login", "no_credentials"),
        ({"session_token": "garbage"}, "unauthorized", "invalid_session"),
        ({"session_token": SESSION_TOKEN}, "admit", "session"),
        ({"path": "/.gateway/login"}, "portal", "gateway_app"),
        ({"listener": "admin", "path": "/users"}, "portal", "gateway_app"),
        ({"client_address": "192.168.1.20"}, "admit", "trusted_network"),
        ({"authorization": f"Bearer {API_TOKEN}"}, "admit", "token"),
        (
            {"authorization": f"Bearer {API_TOKEN}", "method": "POST"},
            "forbidden",
            "read_only_token",
        ),
        ({"authorization": "Bearer cgw_abcd1234_" + "B" * 43}, "unauthorized", "invalid_token"),
        ({"authorization": "Basic YTpi"}, "unauthorized", "invalid_token"),
        # WebSockets and Origin
        (
            {"session_token": SESSION_TOKEN, "websocket": True, "origin": "http://gateway.lan"},
            "admit",
            "session",
        ),
        (
            {"session_token": SESSION_TOKEN, "websocket": True, "origin": "http://evil.example"},
            "forbidden",
            "foreign_origin",
        ),
        ({"session_token": SESSION_TOKEN, "websocket": True}, "forbidden", "missing_origin"),
        (
            {
                "listener": "ws",
                "host": "gateway.lan:8090",
                "websocket": True,
                "session_token": SESSION_TOKEN,
                "origin": "http://gateway.lan",
            },
            "admit",
            "session",
        ),
        (
            {
                "listener": "ws",
                "host": "gateway.lan:8090",
                "websocket": True,
                "session_token": SESSION_TOKEN,
                "origin": "http://gateway.lan:8090",
            },
            "forbidden",
            "foreign_origin",
        ),
        (
            {
                "websocket": True,
                "session_token": SESSION_TOKEN,
                "origin": "https://cemm.example.org",
            },
            "admit",
            "session",
        ),
        (
            {"websocket": True, "client_address": "192.168.1.20", "origin": "http://evil.example"},
            "forbidden",
            "foreign_origin",
        ),
        # Cross-site state changes carrying the cookie
        (
            {"method": "POST", "session_token": SESSION_TOKEN, "origin": "http://evil.example"},
            "forbidden",
            "foreign_origin",
        ),
        (
            {"method": "POST", "session_token": SESSION_TOKEN, "origin": "http://gateway.lan"},
            "admit",
            "session",
        ),
        (
            {"method": "GET", "session_token": SESSION_TOKEN, "origin": "http://evil.example"},
            "admit",
            "session",
        ),
    ],
)
def test_decisions(changes: dict, kind: str, reason: str) -> None:
    verdict = decide(**changes)
    assert (verdict.kind, verdict.reason) == (kind, reason)


def test_idle_and_expired_sessions() -> None:
    facts = dataclasses.replace(BASE, session_token=SESSION_TOKEN)
    assert decide_request(facts, CONFIG, AUTH, {}, now=NOW + 3400).kind == "admit"
    # Idle: last use more than an hour ago ...
    assert decide_request(facts, CONFIG, AUTH, {}, now=NOW + 3600).kind == "unauthorized"
    # ... unless the proxy saw it in use since (an open WebSocket).
    assert (
        decide_request(facts, CONFIG, AUTH, {"sess1": NOW + 3000}, now=NOW + 3600).kind == "admit"
    )
    # Past its lifetime, use does not help.
    assert (
        decide_request(facts, CONFIG, AUTH, {"sess1": NOW + 9999}, now=NOW + 10_000).kind
        == "unauthorized"
    )


@pytest.mark.parametrize(
    ("origin", "host", "page_port", "allowed"),
    [
        ("http://gw.lan", "gw.lan", None, True),
        ("http://gw.lan:8080", "gw.lan:8080", None, True),
        ("http://GW.LAN", "gw.lan", None, True),
        ("https://gw.lan", "gw.lan", None, False),  # scheme differs from the request's
        ("http://gw.lan", "gw.lan:8090", 80, True),
        ("http://gw.lan:8080", "gw.lan:8090", 8080, True),
        ("http://gw.lan:8090", "gw.lan:8090", 80, False),
        ("http://gw.lan.evil.example", "gw.lan", None, False),
        ("null", "gw.lan", None, False),
        ("http://gw.lan/path", "gw.lan", None, False),
        ("http://[::1", "gw.lan", None, False),
    ],
)
def test_origin_allowed(origin: str, host: str, page_port: int | None, allowed: bool) -> None:
    assert (
        origin_allowed(
            origin, scheme="http", host=host, page_port=page_port, public_hostnames=frozenset()
        )
        is allowed
    )
