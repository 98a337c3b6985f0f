"""The per-request access decision, as plain data in and out."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gateway.auth import tokens
from gateway.clock import ManualClock
from gateway.policy.access import AccessConfig, RequestFacts, decide_request, same_origin
from gateway.policy.allowlist import CompiledAllowlist
from gateway.policy.credentials import ApiTokenInfo, AuthSnapshot, SessionInfo
from gateway.policy.names import own_names
from gateway.services import peers
from gateway.settings import WireguardSettings
from gateway.store import db
from gateway.wireguard.keys import KeyVault

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
FULL_SECRET = "F" * 43
FULL_TOKEN = f"cgw_full5678_{FULL_SECRET}"
FULL = dataclasses.replace(
    TOKEN, id="full5678", secret_hash=tokens.token_hash(FULL_SECRET), read_only=False
)
EXPIRING_SECRET = "E" * 43
EXPIRING_TOKEN = f"cgw_exp90123_{EXPIRING_SECRET}"
EXPIRING = dataclasses.replace(
    TOKEN,
    id="exp90123",
    secret_hash=tokens.token_hash(EXPIRING_SECRET),
    read_only=False,
    expires_at=NOW + 60,
)
AUTH = AuthSnapshot(
    sessions={tokens.token_hash(SESSION_TOKEN): SESSION},
    api_tokens={TOKEN.id: TOKEN, FULL.id: FULL, EXPIRING.id: EXPIRING},
    idle_timeout=3600,
)
CONFIG = AccessConfig(
    trusted_networks=CompiledAllowlist.from_networks(["192.168.1.0/24"]),
    names=own_names(public_hostnames=["cemm.example.org"], addresses=["gateway.lan"]),
    web_port=80,
)
BASE = RequestFacts(
    listener="web",
    method="GET",
    path="/api/v1/public/cemm",
    client_address="203.0.113.5",
    host="gateway.lan",
    origin=None,
    fetch_site=None,
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
        # The Origin rule holds whatever the credential: trusted networks and tokens too.
        (
            {"method": "POST", "client_address": "192.168.1.20", "origin": "http://evil.example"},
            "forbidden",
            "foreign_origin",
        ),
        (
            {"method": "POST", "client_address": "192.168.1.20", "fetch_site": "cross-site"},
            "forbidden",
            "foreign_origin",
        ),
        (
            {"method": "POST", "client_address": "192.168.1.20", "origin": "http://gateway.lan"},
            "admit",
            "trusted_network",
        ),
        (
            {"method": "POST", "client_address": "192.168.1.20"},  # no browser: a script
            "admit",
            "trusted_network",
        ),
        (
            {
                "method": "POST",
                "authorization": f"Bearer {FULL_TOKEN}",
                "origin": "http://evil.example",
            },
            "forbidden",
            "foreign_origin",
        ),
        ({"method": "POST", "authorization": f"Bearer {FULL_TOKEN}"}, "admit", "token"),
        (
            {"method": "DELETE", "session_token": SESSION_TOKEN, "fetch_site": "same-site"},
            "forbidden",
            "foreign_origin",
        ),
        (
            {"method": "POST", "session_token": SESSION_TOKEN, "origin": "null"},
            "admit",
            "session",
        ),
        (
            {
                "method": "POST",
                "session_token": SESSION_TOKEN,
                "origin": "null",
                "fetch_site": "cross-site",
            },
            "forbidden",
            "foreign_origin",
        ),
        # DNS rebinding: a foreign Host with a matching Origin is no name of the gateway's.
        (
            {
                "websocket": True,
                "client_address": "192.168.1.20",
                "host": "evil.example",
                "origin": "http://evil.example",
            },
            "forbidden",
            "foreign_origin",
        ),
        (
            {
                "method": "POST",
                "session_token": SESSION_TOKEN,
                "host": "evil.example",
                "origin": "http://evil.example",
            },
            "forbidden",
            "foreign_origin",
        ),
        # ... and a trusted network reached by a foreign name is trusted no more.
        (
            {"client_address": "192.168.1.20", "host": "evil.example"},
            "unauthorized",
            "no_credentials",
        ),
        (
            {"client_address": "192.168.1.20", "host": "cemm.example.org:8080"},
            "admit",
            "trusted_network",
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


NAMES = own_names(
    public_url="https://cemm.example.org",
    public_hostnames=["home.example.net:18080"],
    addresses=["gw.lan", "192.168.1.10", "fd00::10"],
)


@pytest.mark.parametrize(
    ("origin", "fetch_site", "page_port", "allowed"),
    [
        ("http://gw.lan", None, 80, True),
        ("https://gw.lan", None, 80, False),  # port 443: not where the page came from
        ("https://gw.lan:80", None, 80, True),
        ("http://GW.LAN", None, 80, True),
        ("http://gw.lan:8080", None, 8080, True),
        ("http://gw.lan:8090", None, 80, False),  # another port of the same host
        ("http://192.168.1.10", None, 80, True),
        ("http://[fd00::10]", None, 80, True),
        ("https://cemm.example.org", None, 80, True),
        ("https://cemm.example.org:8443", None, 80, False),
        ("http://cemm.example.org", None, 80, True),  # a name of the gateway, on its port
        ("http://home.example.net:18080", None, 80, True),
        ("http://home.example.net", None, 80, True),
        ("http://gw.lan.evil.example", None, 80, False),
        ("http://evil.example", "same-origin", 80, False),
        ("http://gw.lan/path", None, 80, False),
        ("http://[::1", None, 80, False),
        ("ftp://gw.lan", None, 80, False),
        ("null", None, 80, True),  # says nothing: a non-browser or a privacy-minded form
        ("null", "cross-site", 80, False),
        (None, "same-origin", 80, True),
        (None, "none", 80, True),
        (None, "same-site", 80, False),
        (None, "cross-site", 80, False),
        (None, None, 80, True),
    ],
)
def test_same_origin(
    origin: str | None, fetch_site: str | None, page_port: int, allowed: bool
) -> None:
    assert same_origin(origin, fetch_site, names=NAMES, page_port=page_port) is allowed


@pytest.mark.parametrize(
    ("host", "own"),
    [
        ("gw.lan", True),
        ("gw.lan:8080", True),
        ("GW.LAN.", True),
        ("[fd00::10]:80", True),
        ("cemm.example.org", True),
        ("evil.example", False),
        ("", False),
        ("gw.lan@evil.example", False),
    ],
)
def test_own_hosts(host: str, own: bool) -> None:
    assert NAMES.is_own_host(host) is own


METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
# What each credential may do, per method, on both CEMM ports. A read-only token reads
# (GET, HEAD) and nothing else - not even OPTIONS, which a script has no use for; a full
# token, a session (without a foreign Origin) and a trusted network may use every method.
CREDENTIALS: dict[str, tuple[dict[str, object], frozenset[str]]] = {
    "read_only_token": (
        {"authorization": f"Bearer {API_TOKEN}"},
        frozenset({"GET", "HEAD"}),
    ),
    "full_token": ({"authorization": f"Bearer {FULL_TOKEN}"}, frozenset(METHODS)),
    "session": ({"session_token": SESSION_TOKEN}, frozenset(METHODS)),
    "trusted_network": ({"client_address": "192.168.1.20"}, frozenset(METHODS)),
}


@pytest.mark.parametrize("listener", ["web", "ws"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("credential", sorted(CREDENTIALS))
def test_every_method_for_every_credential(listener: str, method: str, credential: str) -> None:
    changes, allowed = CREDENTIALS[credential]
    host = "gateway.lan:8090" if listener == "ws" else "gateway.lan"
    verdict = decide(listener=listener, host=host, method=method, **changes)
    if method in allowed:
        assert verdict.kind == "admit", verdict
    else:
        assert (verdict.kind, verdict.reason) == ("forbidden", "read_only_token")
        # Who was refused is known (for the log), though nothing is admitted.
        assert verdict.token_id == TOKEN.id


@pytest.mark.parametrize("listener", ["web", "ws"])
def test_a_read_only_token_may_open_a_websocket(listener: str) -> None:
    """The upgrade is a GET: live data is reading. What the client then sends is dropped by
    ``addons/websocket_messages.py``, which needs the token id to know."""
    host = "gateway.lan:8090" if listener == "ws" else "gateway.lan"
    verdict = decide(
        listener=listener, host=host, websocket=True, authorization=f"Bearer {API_TOKEN}"
    )
    assert (verdict.kind, verdict.reason, verdict.token_id) == ("admit", "token", TOKEN.id)


@pytest.mark.parametrize(
    ("now", "kind"),
    [
        (NOW, "admit"),
        (NOW + 59.999, "admit"),
        (NOW + 60, "unauthorized"),  # expires_at is the first moment it no longer works
        (NOW + 61, "unauthorized"),
        (NOW + 10**9, "unauthorized"),
    ],
)
def test_a_token_stops_at_its_expiry(now: float, kind: str) -> None:
    facts = dataclasses.replace(BASE, authorization=f"Bearer {EXPIRING_TOKEN}")
    verdict = decide_request(facts, CONFIG, AUTH, {}, now=now)
    assert verdict.kind == kind
    if kind == "unauthorized":
        assert verdict.reason == "invalid_token" and verdict.token_id is None


def test_a_token_without_expiry_does_not_expire() -> None:
    facts = dataclasses.replace(BASE, authorization=f"Bearer {FULL_TOKEN}")
    assert decide_request(facts, CONFIG, AUTH, {}, now=NOW + 10**9).kind == "admit"


def test_an_expired_token_admits_nothing_even_a_websocket() -> None:
    facts = dataclasses.replace(
        BASE, authorization=f"Bearer {EXPIRING_TOKEN}", websocket=True, method="GET"
    )
    assert decide_request(facts, CONFIG, AUTH, {}, now=NOW + 60).kind == "unauthorized"


def test_a_trusted_vpn_peer_is_a_trusted_network(tmp_path: Path) -> None:
    """A peer marked as a trusted device needs no login from its tunnel addresses, as the
    app composes it (``Gateway._access_config``: the trusted networks plus
    ``peers.trusted_addresses``); an ordinary peer, or a trusted one past its expiry, does."""
    settings = WireguardSettings(enabled=True, endpoint="vpn.example.net:51820")
    clock = ManualClock()
    conn = db.connect(tmp_path / "gateway.db")
    vault = KeyVault(tmp_path)
    common = {"settings": settings, "vault": vault, "actor": "test", "clock": clock}
    trusted = peers.add_peer(conn, "tablet", trusted=True, expires_in=3600, **common)
    ordinary = peers.add_peer(conn, "phone", **common)

    def verdict(address: str) -> str:
        config = dataclasses.replace(
            CONFIG,
            trusted_networks=CompiledAllowlist.from_networks(
                ["192.168.1.0/24", *peers.trusted_addresses(conn, clock=clock)]
            ),
        )
        facts = dataclasses.replace(BASE, client_address=address, method="POST")
        return decide_request(facts, config, AUTH, {}, now=NOW).kind

    assert verdict(trusted.address_v4) == "admit"
    if trusted.address_v6:
        assert verdict(trusted.address_v6) == "admit"
    assert verdict(ordinary.address_v4) == "unauthorized"
    clock.advance(3601)
    assert verdict(trusted.address_v4) == "unauthorized"


# The viewer role, method overrides and token scopes.
VIEWER_TOKEN_TEXT = "V" * 43
VIEWER_SESSION_TOKEN = "v" * 43
SCOPED_SECRET = "P" * 43
SCOPED_TOKEN = f"cgw_scop1234_{SCOPED_SECRET}"
WS_SCOPED_SECRET = "W" * 43
WS_SCOPED_TOKEN = f"cgw_wsco1234_{WS_SCOPED_SECRET}"
VIEWER_AUTH = AuthSnapshot(
    sessions={
        tokens.token_hash(SESSION_TOKEN): SESSION,
        tokens.token_hash(VIEWER_SESSION_TOKEN): dataclasses.replace(
            SESSION, id="sessv", user_name="vera", role="viewer"
        ),
    },
    api_tokens={
        TOKEN.id: TOKEN,
        FULL.id: FULL,
        "view1234": dataclasses.replace(
            FULL,
            id="view1234",
            role="viewer",
            secret_hash=tokens.token_hash(VIEWER_TOKEN_TEXT),
        ),
        "scop1234": dataclasses.replace(
            FULL,
            id="scop1234",
            secret_hash=tokens.token_hash(SCOPED_SECRET),
            scopes=("/api/v1/public",),
        ),
        "wsco1234": dataclasses.replace(
            FULL,
            id="wsco1234",
            secret_hash=tokens.token_hash(WS_SCOPED_SECRET),
            scopes=("/api/v1/public", "ws:/live"),
        ),
    },
    idle_timeout=3600,
)
VIEWER_SESSION = {"session_token": VIEWER_SESSION_TOKEN, "origin": "http://gateway.lan"}
VIEWER_BEARER = {"authorization": f"Bearer cgw_view1234_{VIEWER_TOKEN_TEXT}"}
SCOPED = {"authorization": f"Bearer {SCOPED_TOKEN}"}
WS_SCOPED = {"authorization": f"Bearer {WS_SCOPED_TOKEN}"}
FULL_BEARER = {"authorization": f"Bearer {FULL_TOKEN}"}
READ_ONLY_BEARER = {"authorization": f"Bearer {API_TOKEN}"}


def decide_as(**changes: object):
    return decide_request(dataclasses.replace(BASE, **changes), CONFIG, VIEWER_AUTH, {}, now=NOW)


@pytest.mark.parametrize("listener", ["web", "ws"])
@pytest.mark.parametrize("credential", [VIEWER_SESSION, VIEWER_BEARER])
@pytest.mark.parametrize(
    ("method", "override", "kind", "reason"),
    [
        ("GET", False, "admit", None),
        ("HEAD", False, "admit", None),
        ("OPTIONS", False, "admit", None),
        ("POST", False, "forbidden", "viewer_read_only"),
        ("PUT", False, "forbidden", "viewer_read_only"),
        ("PATCH", False, "forbidden", "viewer_read_only"),
        ("DELETE", False, "forbidden", "viewer_read_only"),
        ("PROPFIND", False, "forbidden", "viewer_read_only"),
        ("GET", True, "forbidden", "method_override"),
        ("HEAD", True, "forbidden", "method_override"),
    ],
)
def test_a_viewer_only_looks(
    listener: str, credential: dict[str, str], method: str, override: bool, kind: str, reason
) -> None:
    verdict = decide_as(listener=listener, method=method, method_override=override, **credential)
    assert verdict.kind == kind
    assert verdict.role == "viewer"
    if reason:
        assert verdict.reason == reason


def test_a_viewer_opens_the_websocket() -> None:
    verdict = decide_as(websocket=True, listener="ws", **VIEWER_SESSION)
    assert (verdict.kind, verdict.role) == ("admit", "viewer")


@pytest.mark.parametrize("listener", ["web", "ws"])
@pytest.mark.parametrize(
    ("credential", "reason"),
    [
        (VIEWER_SESSION, "viewer_read_only"),
        (VIEWER_BEARER, "viewer_read_only"),
        (READ_ONLY_BEARER, "read_only_token"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_a_look_carries_no_body(
    listener: str, credential: dict[str, str], reason: str, method: str
) -> None:
    verdict = decide_as(listener=listener, method=method, body=True, **credential)
    assert (verdict.kind, verdict.reason) == ("forbidden", reason)
    assert decide_as(listener=listener, method=method, **credential).kind == (
        "forbidden" if (method, reason) == ("OPTIONS", "read_only_token") else "admit"
    )


@pytest.mark.parametrize("credential", [{"session_token": SESSION_TOKEN}, FULL_BEARER])
def test_anyone_elses_get_with_a_body_is_admitted(credential: dict[str, str]) -> None:
    assert decide_as(body=True, **credential).kind == "admit"


@pytest.mark.parametrize(
    ("content_length", "transfer_encoding", "body"),
    [
        (None, None, False),
        ("0", None, False),
        (" 0 ", None, False),
        ("1", None, True),
        ("x", None, True),
        ("0", "chunked", True),
        (None, "identity", True),
    ],
)
def test_which_headers_announce_a_body(
    content_length: str | None, transfer_encoding: str | None, body: bool
) -> None:
    from gateway.policy.access import carries_body

    assert carries_body(content_length, transfer_encoding) is body


@pytest.mark.parametrize(
    ("name", "override"),
    [
        ("X-HTTP-Method-Override", True),
        ("X_HTTP_Method_Override", True),
        ("x_http_method", True),
        ("X-Method_Override", True),
        ("X-HTTP-Methods", False),
        ("Content-Type", False),
    ],
)
def test_override_names_read_an_underscore_as_a_dash(name: str, override: bool) -> None:
    from addons.forwarding import forwarded_fields
    from gateway.policy.access import is_method_override

    assert is_method_override(name) is override
    kept = forwarded_fields(((name.encode(), b"DELETE"),), [], session_cookie=None)
    assert (kept == ()) is override


def test_other_roles_with_an_override_header_are_admitted_the_header_is_stripped() -> None:
    from gateway.policy.access import METHOD_OVERRIDE_HEADERS
    from gateway.policy.forwarded import CLIENT_SUPPLIED_HEADERS

    verdict = decide_as(session_token=SESSION_TOKEN, method="POST", method_override=True)
    assert verdict.kind == "admit"
    assert METHOD_OVERRIDE_HEADERS <= CLIENT_SUPPLIED_HEADERS


@pytest.mark.parametrize(
    ("path", "admitted"),
    [
        ("/api/v1/public", True),
        ("/api/v1/public/", True),
        ("/api/v1/public/cemm?x=1", True),
        ("/api/v1/public//cemm", False),
        ("/api/v1/public/./cemm", False),
        ("/api/v1/secret//../public", False),
        ("/api/v1/secret%2f..%2fpublic", False),
        ("/api/v1/secret%2F..%2Fpublic", False),
        ("/api/v1/public/%2e/cemm", False),
        ("/api/v1/public/%2E%2e/public", False),
        ("/api/v1/public#/../../secret", False),
        ("/api/v1/public/x%5c..%5csecret", False),
        ("/api/v1/public/x\\y", False),
        ("/api/v1/public/\udcff", False),  # a raw byte that is not UTF-8, as mitmproxy keeps it
        ("/api/v1/public/.", False),
        ("/api/v1/public/..", False),
        ("/api/v1/public/caf\u00e9", True),
        ("/api/v1/publicx", False),
        ("/api/v1/publicx/cemm", False),
        ("/api/v1/", False),
        ("/api/v1/public/../private", False),
        ("/api/v1/public/%2e%2e/private", False),
        ("/api/v1/public/%2E%2E%2fprivate", False),
        ("/api/v1/public/..%2f..%2fprivate", False),
        ("/api/v1/public/%252e%252e/private", False),
        ("/api/v1/public;x=1/cemm", False),
        ("/api/v1/public/cemm;jsessionid=1", False),
        ("/api/v1/public\\..\\private", False),
        ("/api/v1/%70ublic/cemm", False),
        ("//api/v1/public/cemm", False),
        ("/../api/v1/public", False),
        ("/api/v1/public/%00", False),
        ("/api/v1/public/%ff", False),
    ],
)
def test_a_scope_admits_its_prefix_on_segment_boundaries(path: str, admitted: bool) -> None:
    verdict = decide_as(path=path, **SCOPED)
    assert (verdict.kind, verdict.reason) == (
        ("admit", "token") if admitted else ("forbidden", "out_of_scope")
    )


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({"listener": "ws", "path": "/live", "websocket": True, **SCOPED}, "forbidden"),
        ({"path": "/.gateway/ws/live", "websocket": True, **SCOPED}, "forbidden"),
        ({"listener": "ws", "path": "/live", "websocket": True, **WS_SCOPED}, "admit"),
        ({"listener": "ws", "path": "/live/x?y", "websocket": True, **WS_SCOPED}, "admit"),
        ({"path": "/.gateway/ws/live", "websocket": True, **WS_SCOPED}, "admit"),
        ({"path": "/.gateway/ws/other", "websocket": True, **WS_SCOPED}, "forbidden"),
        ({"listener": "ws", "path": "/", "websocket": True, **WS_SCOPED}, "forbidden"),
        ({"method": "POST", "path": "/api/v1/public/x", **SCOPED}, "admit"),
        # A scope names a port: plain scopes plain HTTP on the web port, ws: scopes upgrades.
        ({"listener": "ws", "path": "/api/v1/public", "websocket": True, **SCOPED}, "forbidden"),
        ({"path": "/.gateway/ws/api/v1/public", "websocket": True, **SCOPED}, "forbidden"),
        ({"path": "/api/v1/public", "websocket": True, **SCOPED}, "forbidden"),
        ({"listener": "ws", "path": "/api/v1/public", **SCOPED}, "forbidden"),
        ({"path": "/live", **WS_SCOPED}, "forbidden"),
        ({"path": "/live", "websocket": True, **WS_SCOPED}, "forbidden"),
        ({"listener": "ws", "path": "/live", **WS_SCOPED}, "forbidden"),
        ({"path": "/.gateway/ws/live", **WS_SCOPED}, "forbidden"),
        ({"path": "/.gateway/ws//live", "websocket": True, **WS_SCOPED}, "forbidden"),
        ({"listener": "ws", "path": "/x/../live", "websocket": True, **WS_SCOPED}, "forbidden"),
        ({"path": "/api/v1/public", **WS_SCOPED}, "admit"),
    ],
)
def test_a_scoped_token_opens_a_websocket_only_where_a_scope_names_its_path(
    changes: dict[str, object], kind: str
) -> None:
    assert decide_as(**changes).kind == kind


def test_scopes_are_normalised_for_storing() -> None:
    from gateway.policy.credentials import normalise_scope

    assert normalise_scope("/api/v1/public/") == "/api/v1/public"
    assert normalise_scope("/") == "/"
    assert normalise_scope("api") is None
    assert normalise_scope("/a/../..") is None
    assert normalise_scope("/a?b") is None
    assert normalise_scope("/a;b") is None
    assert normalise_scope("/api/../x") is None
    assert normalise_scope("/api//x") is None
    assert normalise_scope("/%61pi") is None
    assert normalise_scope("ws:/live/") == "ws:/live"
    assert normalise_scope("ws:/") == "ws:/"
    assert normalise_scope("ws:live") is None
    assert normalise_scope("ws:/a/../b") is None
    assert normalise_scope("ws:/a//b") is None
    assert normalise_scope("ws:ws:/a") is None
    assert normalise_scope("wss:/a") is None
