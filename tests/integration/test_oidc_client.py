"""The OIDC client against a real OpenID Connect provider on 127.0.0.1.

The provider (tests/support/oidc_provider.py) runs in a thread of the test process; the client
talks to it over loopback HTTP and the tests log in by submitting the provider's form. Where a
test needs a provider that misbehaves (a forged signature, rotated keys, claims only in
userinfo), a transport between client and provider rewrites the real provider's answer.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc.jwk import KeySet

from gateway.auth.oidc import (
    PENDING_LOGIN_MAX_AGE,
    OidcConfig,
    OidcError,
    OidcIdentity,
    admission,
    is_secure_url,
    state_bound_to_browser,
    trusted_email,
)
from gateway.auth.oidc_client import OidcClient
from gateway.clock import ManualClock
from gateway.netutil import free_port
from tests.support.oidc_provider import OidcProvider


def async_test(
    timeout: float = 10.0,
) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., None]]:
    """Run an async test in a fresh event loop, failing it after ``timeout`` seconds."""

    def decorate(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
        @functools.wraps(test)
        def run(*args: Any, **kwargs: Any) -> None:
            async def bounded() -> None:
                async with asyncio.timeout(timeout):
                    await test(*args, **kwargs)

            asyncio.run(bounded())

        return run

    return decorate


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with OidcProvider() as running:
        yield running


def oidc_config(provider: OidcProvider, **overrides: Any) -> OidcConfig:
    settings: dict[str, Any] = {
        "discovery_url": provider.discovery_url,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
        "redirect_uri": provider.redirect_uri,
        "timeout": 5.0,
        **overrides,
    }
    return OidcConfig(**settings)


def system_time_clock() -> ManualClock:
    """A manual clock that starts at the real time (the provider stamps tokens with it)."""
    return ManualClock(time.time())


class RewritingTransport(httpx.AsyncBaseTransport):
    """Passes requests to the real provider; may rewrite answers and records requests."""

    def __init__(
        self, rewrite: Callable[[httpx.Request, bytes], bytes | None] | None = None
    ) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.rewrite = rewrite
        self.requests: list[tuple[httpx.Request, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        self.requests.append((request, body))
        response = await self._inner.handle_async_request(request)
        content = await response.aread()
        await response.aclose()
        if self.rewrite is not None:
            content = self.rewrite(request, content) or content
        headers = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in ("content-length", "transfer-encoding", "content-encoding")
        ]
        return httpx.Response(response.status_code, headers=headers, content=content)

    def paths(self) -> list[str]:
        return [request.url.path for request, _ in self.requests]

    async def aclose(self) -> None:
        await self._inner.aclose()


def id_token_claims(id_token: str) -> dict[str, Any]:
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# --- the whole flow ------------------------------------------------------------------------


@async_test()
async def test_login_yields_the_identity_the_provider_vouched_for(provider: OidcProvider) -> None:
    config = oidc_config(provider, allowed_groups=("cemm-users",))
    async with OidcClient(config) as client:
        url, pending = await client.begin("/dashboard")
        query = provider.login_as(
            url,
            sub="alice-123",
            email="Alice@Example.org",
            name="Alice Example",
            groups=["family", "cemm-users"],
        )
        identity = await client.complete(pending, query)

    assert identity == OidcIdentity(
        issuer=provider.issuer,
        subject="alice-123",
        email="Alice@Example.org",
        email_verified=True,
        name="Alice Example",
        groups=("family", "cemm-users"),
        preferred_username=None,
    )
    assert pending.next_url == "/dashboard"
    assert admission(identity, linked_user_exists=False, config=config) == "create"


@async_test()
async def test_authorization_request_and_code_exchange_carry_pkce_and_the_secret(
    provider: OidcProvider,
) -> None:
    transport = RewritingTransport()
    async with httpx.AsyncClient(transport=transport) as http:
        client = OidcClient(oidc_config(provider), http=http)
        url, pending = await client.begin("/")
        params = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
        assert params == {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": provider.redirect_uri,
            "scope": "openid email profile",
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": create_s256_code_challenge(pending.code_verifier),
            "code_challenge_method": "S256",
        }
        assert len({pending.state, pending.nonce, pending.code_verifier}) == 3
        assert len(pending.state) >= 43 and len(pending.code_verifier) >= 43

        await client.complete(pending, provider.login_as(url, sub="pkce", email="p@example.org"))

    token_requests = [(r, body) for r, body in transport.requests if r.url.path == "/oauth2/token"]
    assert len(token_requests) == 1
    request, body = token_requests[0]
    form = dict(parse_qsl(body.decode()))
    assert form["grant_type"] == "authorization_code"
    assert form["code_verifier"] == pending.code_verifier
    assert form["redirect_uri"] == provider.redirect_uri
    assert "client_secret" not in form  # client_secret_basic: the secret is in the header
    credentials = f"{provider.client_id}:{provider.client_secret}".encode()
    assert request.headers["authorization"] == "Basic " + base64.b64encode(credentials).decode()


@async_test()
async def test_discovery_and_keys_are_fetched_once(provider: OidcProvider) -> None:
    transport = RewritingTransport()
    async with httpx.AsyncClient(transport=transport) as http:
        client = OidcClient(oidc_config(provider), http=http)
        for sub in ("first", "second"):
            url, pending = await client.begin("/")
            await client.complete(pending, provider.login_as(url, sub=sub, email=f"{sub}@x.org"))
    paths = transport.paths()
    assert paths.count("/.well-known/openid-configuration") == 1
    assert paths.count("/jwks") == 1
    assert "/userinfo" not in paths  # the ID token had the e-mail


@async_test()
async def test_reauthentication_asks_the_provider_to_check_the_credentials_again(
    provider: OidcProvider,
) -> None:
    async with OidcClient(oidc_config(provider)) as client:
        plain_url, plain = await client.begin("/")
        url, pending = await client.begin("/.gateway/account", reauthenticate=True)
    assert "prompt" not in parse_qs(urlsplit(plain_url).query) and not plain.reauthenticate
    assert parse_qs(urlsplit(url).query)["prompt"] == ["login"]
    assert pending.reauthenticate


# --- the callback -------------------------------------------------------------------------


@async_test()
async def test_a_callback_with_another_state_is_refused(provider: OidcProvider) -> None:
    async with OidcClient(oidc_config(provider)) as client:
        url, pending = await client.begin("/")
        query = provider.login_as(url, sub="mallory", email="m@example.org")
        _, other_pending = await client.begin("/")
        with pytest.raises(OidcError, match="state mismatch"):
            await client.complete(other_pending, query)
        with pytest.raises(OidcError, match="state mismatch"):
            await client.complete(pending, {k: v for k, v in query.items() if k != "state"})


@async_test()
async def test_the_state_cookie_binds_a_sign_in_to_its_browser(provider: OidcProvider) -> None:
    async with OidcClient(oidc_config(provider)) as client:
        _, pending = await client.begin("/")
        _, other = await client.begin("/")
    assert state_bound_to_browser(pending, pending.state)
    assert not state_bound_to_browser(pending, other.state)
    assert not state_bound_to_browser(pending, None)
    assert not state_bound_to_browser(pending, "")


@async_test()
async def test_an_id_token_with_another_nonce_is_refused(provider: OidcProvider) -> None:
    async with OidcClient(oidc_config(provider)) as client:
        url, pending = await client.begin("/")
        query = provider.login_as(url, sub="replay", email="r@example.org")
        tampered = dataclasses.replace(pending, nonce="a-nonce-from-another-login")
        with pytest.raises(OidcError, match="nonce does not match"):
            await client.complete(tampered, query)


@async_test()
async def test_denying_at_the_provider_is_reported_with_its_error_code(
    provider: OidcProvider,
) -> None:
    async with OidcClient(oidc_config(provider)) as client:
        url, pending = await client.begin("/")
        query = provider.deny(url)
        assert query["error"] == "access_denied"
        with pytest.raises(OidcError) as refused:
            await client.complete(pending, query)
    assert str(refused.value) == "the provider refused the login: access_denied"


@async_test()
async def test_text_from_the_callback_url_is_not_echoed(provider: OidcProvider) -> None:
    async with OidcClient(oidc_config(provider)) as client:
        _, pending = await client.begin("/")
        query = {
            "state": pending.state,
            "error": "<script>alert(1)</script>",
            "error_description": "call +1 555 0100 to unlock your account",
        }
        with pytest.raises(OidcError) as refused:
            await client.complete(pending, query)
    assert str(refused.value) == "the provider refused the login: unknown_error"
    assert "555" in refused.value.detail


@async_test()
async def test_a_code_cannot_be_used_twice(provider: OidcProvider) -> None:
    async with OidcClient(oidc_config(provider)) as client:
        url, pending = await client.begin("/")
        query = provider.login_as(url, sub="twice", email="t@example.org")
        await client.complete(pending, query)
        with pytest.raises(OidcError, match="invalid_grant"):
            await client.complete(pending, query)


@async_test()
async def test_a_pending_login_expires_after_ten_minutes(provider: OidcProvider) -> None:
    clock = system_time_clock()
    async with OidcClient(oidc_config(provider), clock=clock) as client:
        url, pending = await client.begin("/")
        query = provider.login_as(url, sub="slow", email="s@example.org")
        clock.advance(PENDING_LOGIN_MAX_AGE + 1)
        with pytest.raises(OidcError, match="longer than 10 minutes"):
            await client.complete(pending, query)


@async_test()
async def test_a_response_naming_another_issuer_is_refused(provider: OidcProvider) -> None:
    async with OidcClient(oidc_config(provider)) as client:
        url, pending = await client.begin("/")
        query = provider.login_as(url, sub="mixup", email="x@example.org")
        with pytest.raises(OidcError, match="iss mismatch"):
            await client.complete(pending, {**query, "iss": "https://evil.example"})


@async_test()
async def test_a_wrong_client_secret_is_refused_by_the_provider(provider: OidcProvider) -> None:
    async with OidcClient(oidc_config(provider, client_secret="not-the-secret")) as client:
        url, pending = await client.begin("/")
        query = provider.login_as(url, sub="secret", email="s@example.org")
        with pytest.raises(OidcError, match="invalid_client"):
            await client.complete(pending, query)


# --- the ID token -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("skew", "problem"), [(7200.0, "expired"), (-7200.0, "not valid yet")], ids=["ahead", "behind"]
)
@async_test()
async def test_id_token_times_are_checked_against_the_clock(
    provider: OidcProvider, skew: float, problem: str
) -> None:
    # The provider issues tokens valid for an hour; a gateway clock two hours off refuses them.
    clock = system_time_clock()
    clock.advance(skew)
    async with OidcClient(oidc_config(provider), clock=clock) as client:
        url, pending = await client.begin("/")
        query = provider.login_as(url, sub="clock", email="c@example.org")
        with pytest.raises(OidcError, match=problem):
            await client.complete(pending, query)


@async_test()
async def test_a_forged_id_token_signature_is_refused(provider: OidcProvider) -> None:
    def forge(request: httpx.Request, content: bytes) -> bytes | None:
        if request.url.path != "/oauth2/token":
            return None
        token = json.loads(content)
        header, _, signature = token["id_token"].split(".")
        claims = id_token_claims(token["id_token"])
        claims["email"] = "admin@example.org"
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        token["id_token"] = f"{header}.{forged}.{signature}"
        return json.dumps(token).encode()

    async with httpx.AsyncClient(transport=RewritingTransport(forge)) as http:
        client = OidcClient(oidc_config(provider), http=http)
        url, pending = await client.begin("/")
        query = provider.login_as(url, sub="forger", email="forger@example.org")
        with pytest.raises(OidcError, match="signature is invalid"):
            await client.complete(pending, query)


@async_test()
async def test_an_unknown_key_id_makes_the_client_fetch_the_keys_again(
    provider: OidcProvider,
) -> None:
    # The first JWKS answer is a stale key set (before the provider rotated its key).
    stale = KeySet.generate_key_set("RSA", 2048, count=1).as_dict(private=False)
    served: list[str] = []

    def stale_first(request: httpx.Request, content: bytes) -> bytes | None:
        if request.url.path != "/jwks":
            return None
        served.append("stale" if not served else "real")
        return json.dumps(stale).encode() if served[-1] == "stale" else None

    async with httpx.AsyncClient(transport=RewritingTransport(stale_first)) as http:
        client = OidcClient(oidc_config(provider), http=http)
        url, pending = await client.begin("/")
        identity = await client.complete(
            pending, provider.login_as(url, sub="rotated", email="r@example.org")
        )
    assert served == ["stale", "real"]
    assert identity.subject == "rotated"


# --- userinfo, e-mail verification --------------------------------------------------------


@async_test()
async def test_email_and_groups_missing_from_the_id_token_come_from_userinfo(
    provider: OidcProvider,
) -> None:
    # Some providers release the e-mail only at the userinfo endpoint. Emulate one with the
    # real provider: the claims appear right after the ID token was issued without them.
    def release_claims_after_token(request: httpx.Request, content: bytes) -> bytes | None:
        if request.url.path == "/oauth2/token":
            assert "email" not in id_token_claims(json.loads(content)["id_token"])
            provider.set_user(
                "late", {"email": "late@example.org", "email_verified": True, "groups": ["g"]}
            )
        return None

    transport = RewritingTransport(release_claims_after_token)
    async with httpx.AsyncClient(transport=transport) as http:
        client = OidcClient(oidc_config(provider, allowed_groups=("g",)), http=http)
        url, pending = await client.begin("/")
        identity = await client.complete(pending, provider.login_as(url, sub="late"))
    assert "/userinfo" in transport.paths()
    assert (identity.email, identity.email_verified, identity.groups) == (
        "late@example.org",
        True,
        ("g",),
    )


@pytest.mark.parametrize("email_verified", [False, None], ids=["false", "not-sent"])
@async_test()
async def test_an_unverified_email_is_not_trusted(
    provider: OidcProvider, email_verified: bool | None
) -> None:
    config = oidc_config(provider, allowed_emails=("eve@example.org",))
    async with OidcClient(config) as client:
        url, pending = await client.begin("/")
        query = provider.login_as(
            url, sub=f"eve-{email_verified}", email="eve@example.org", email_verified=email_verified
        )
        identity = await client.complete(pending, query)
    assert identity.email == "eve@example.org"
    assert identity.email_verified is False
    assert trusted_email(identity, config) is None
    assert admission(identity, linked_user_exists=True, config=config) == "refuse"


# --- admission ----------------------------------------------------------------------------


def identity(
    email: str | None = "bob@example.org", verified: bool = True, groups: tuple[str, ...] = ()
) -> OidcIdentity:
    return OidcIdentity(
        issuer="https://id.example",
        subject="bob",
        email=email,
        email_verified=verified,
        name="Bob",
        groups=groups,
    )


ADMISSION_CONFIG = OidcConfig(
    discovery_url="https://id.example/.well-known/openid-configuration",
    client_id="gateway",
    client_secret="secret",
    redirect_uri="https://gw.example/.gateway/oidc/callback",
    allowed_emails=("Bob@Example.org",),
    allowed_groups=("cemm",),
)


@pytest.mark.parametrize(
    ("who", "linked", "config_changes", "expected"),
    [
        (identity(email="someone@else.org"), True, {}, "linked"),
        (identity(), True, {}, "linked"),
        (identity(email="BOB@example.ORG"), False, {}, "create"),
        (identity(email="carol@example.org", groups=("x", "cemm")), False, {}, "create"),
        (identity(email="carol@example.org", groups=("CEMM",)), False, {}, "refuse"),
        (identity(email="carol@example.org"), False, {}, "refuse"),
        (identity(verified=False), True, {}, "refuse"),
        (identity(verified=False), False, {}, "refuse"),
        (identity(verified=False, groups=("cemm",)), False, {}, "refuse"),
        (identity(email=None, groups=("cemm",)), False, {}, "refuse"),
        (identity(verified=False), True, {"trust_unverified_email": True}, "linked"),
        (identity(verified=False), False, {"trust_unverified_email": True}, "create"),
    ],
    ids=[
        "linked",
        "linked-and-allowed",
        "create-by-email-any-case",
        "create-by-group",
        "groups-are-case-sensitive",
        "refuse-stranger",
        "unverified-not-linked",
        "unverified-not-created",
        "unverified-group-member",
        "no-email",
        "trusted-unverified-linked",
        "trusted-unverified-created",
    ],
)
def test_admission(
    who: OidcIdentity, linked: bool, config_changes: dict[str, Any], expected: str
) -> None:
    config = dataclasses.replace(ADMISSION_CONFIG, **config_changes)
    assert admission(who, linked_user_exists=linked, config=config) == expected


# --- configuration and transport ----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "secure"),
    [
        ("https://id.example/x", True),
        ("http://127.0.0.1:8080/x", True),
        ("http://127.1.2.3/x", True),
        ("http://[::1]:9000/x", True),
        ("http://localhost/x", True),
        ("http://id.example/x", False),
        ("http://192.168.1.10/x", False),
        ("ftp://id.example/x", False),
        ("https:///x", False),
        ("not a url", False),
    ],
)
def test_only_https_or_loopback_http_is_secure(url: str, secure: bool) -> None:
    assert is_secure_url(url) is secure


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"discovery_url": "http://id.example/.well-known/openid-configuration"}, "https"),
        ({"discovery_url": "https://id.example/"}, "does not end with"),
        ({"client_secret": ""}, "client secret"),
        ({"redirect_uri": "/.gateway/oidc/callback"}, "absolute"),
        ({"scopes": ("email",)}, "openid"),
        ({"timeout": 0}, "positive"),
    ],
)
def test_bad_configuration_is_refused_with_a_hint(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(ADMISSION_CONFIG, **changes)


@async_test()
async def test_a_discovery_document_for_another_issuer_is_refused(provider: OidcProvider) -> None:
    # A document that names an issuer other than the one the discovery URL belongs to (a
    # misconfiguration, or a server answering for somebody else) is not used at all.
    def other_issuer(request: httpx.Request, content: bytes) -> bytes | None:
        document = json.loads(content)
        document["issuer"] = f"{provider.issuer}/realms/other"
        return json.dumps(document).encode()

    async with httpx.AsyncClient(transport=RewritingTransport(other_issuer)) as http:
        client = OidcClient(oidc_config(provider), http=http)
        with pytest.raises(OidcError, match="does not match the discovery URL"):
            await client.begin("/")


@async_test()
async def test_an_unreachable_provider_is_reported(provider: OidcProvider) -> None:
    closed = f"http://127.0.0.1:{free_port()}/.well-known/openid-configuration"
    async with OidcClient(oidc_config(provider, discovery_url=closed)) as client:
        with pytest.raises(OidcError, match="could not reach the identity provider"):
            await client.begin("/")
