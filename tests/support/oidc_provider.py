"""A real OpenID Connect provider on 127.0.0.1 for tests, driven over HTTP like a browser.

:class:`OidcProvider` runs `oidc-provider-mock`_ (a Flask app built on authlib's server side:
discovery, authorization code with PKCE, token endpoint, JWKS, userinfo) in a werkzeug server
on a free loopback port in a background thread. The tests talk to it only over HTTP, so the
gateway's OIDC client is exercised end to end - nothing of authlib is mocked.

Client registration is required (``require_client_registration=True``): the helper registers
one confidential client through the provider's RFC 7591 endpoint, so the provider really checks
the client secret and the exact redirect URI. ``require_nonce=True`` makes it refuse an
authorization request without a nonce.

Logging in is what a person does in the browser: :meth:`OidcProvider.login_as` stores the
chosen user's claims (``PUT /users/<sub>``), then submits the provider's authorization form for
that subject to the authorization URL the client produced and returns the query of the
redirect back to the client (``code``, ``state``, ...). :meth:`OidcProvider.deny` presses
"Deny access" instead. The redirect itself is not followed - the redirect URI belongs to a
gateway that does not run in these tests.

.. _oidc-provider-mock: https://github.com/geigerzaehler/oidc-provider-mock
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import httpx
import oidc_provider_mock
import werkzeug.serving

DEFAULT_REDIRECT_URI = "https://gateway.example/.gateway/oidc/callback"


class OidcProvider:
    """``with OidcProvider() as provider:`` - a running provider with one registered client."""

    def __init__(self, redirect_uri: str = DEFAULT_REDIRECT_URI) -> None:
        self.redirect_uri = redirect_uri
        self._server = werkzeug.serving.make_server(
            "127.0.0.1",
            0,
            oidc_provider_mock.app(require_client_registration=True, require_nonce=True),
            threaded=True,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        self.discovery_url = f"{self.issuer}/.well-known/openid-configuration"
        # The "browser" and the provider's admin API; never follows the redirect to the gateway.
        self._http = httpx.Client(base_url=self.issuer, timeout=5, follow_redirects=False)
        try:
            self.client_id, self.client_secret = self.register_client(redirect_uri)
        except BaseException:
            self.close()
            raise

    def register_client(self, redirect_uri: str) -> tuple[str, str]:
        """Register a confidential client (``client_secret_basic``); returns (id, secret)."""
        response = self._http.post(
            "/oauth2/clients",
            json={
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": "client_secret_basic",
            },
        )
        response.raise_for_status()
        body = response.json()
        return body["client_id"], body["client_secret"]

    def set_user(self, sub: str, claims: dict[str, Any]) -> None:
        """Store (or replace) the claims the provider releases for ``sub``."""
        self._http.put(f"/users/{sub}", json=claims).raise_for_status()

    def login_as(
        self,
        authorization_url: str,
        *,
        sub: str,
        email: str | None = None,
        email_verified: bool | None = True,
        name: str | None = None,
        groups: Sequence[str] | None = None,
        extra_claims: dict[str, Any] | None = None,
    ) -> dict[str, str]:
        """Log in at the provider as ``sub`` and return the query of the redirect to the client.

        Claims that are ``None`` are not released at all (e.g. ``email_verified=None`` for a
        provider that does not send the claim).
        """
        claims: dict[str, Any] = {
            "email": email,
            "email_verified": email_verified if email is not None else None,
            "name": name,
            "groups": list(groups) if groups is not None else None,
            **(extra_claims or {}),
        }
        self.set_user(sub, {key: value for key, value in claims.items() if value is not None})
        return self._submit_authorization_form(authorization_url, {"sub": sub})

    def deny(self, authorization_url: str) -> dict[str, str]:
        """Press "Deny access" on the provider's form; returns the query of the redirect."""
        return self._submit_authorization_form(authorization_url, {"action": "deny"})

    def _submit_authorization_form(
        self, authorization_url: str, form: dict[str, str]
    ) -> dict[str, str]:
        # The browser first loads the form (the provider validates the request here) ...
        page = self._http.get(authorization_url)
        if page.status_code != 200:
            raise AssertionError(
                f"the provider refused the authorization request: {page.status_code} {page.text}"
            )
        # ... and the form posts back to the same URL (no action attribute).
        response = self._http.post(authorization_url, data=form)
        if response.status_code != 302:
            raise AssertionError(
                f"expected a redirect to the client, got {response.status_code}: {response.text}"
            )
        location = response.headers["location"]
        target = urlsplit(location)
        expected = urlsplit(self.redirect_uri)
        if (target.scheme, target.netloc, target.path) != (
            expected.scheme,
            expected.netloc,
            expected.path,
        ):
            raise AssertionError(f"the provider redirected elsewhere: {location}")
        return dict(parse_qsl(target.query, keep_blank_values=True))

    def close(self) -> None:
        self._http.close()
        self._server.shutdown()
        self._thread.join(5)
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
