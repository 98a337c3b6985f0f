"""Login through an OpenID Connect provider: the relying-party side of the code flow.

This module talks to the provider and decides whom to admit; it knows nothing of the web
framework, the database or sessions. The caller (the login routes) keeps the pending login
between the two halves of the flow and looks up or creates the local user.

The flow
--------
1. ``url, pending = await client.begin(next_url)``. On first use the client fetches the
   provider's discovery document (``OidcConfig.discovery_url``). It draws a fresh ``state``
   (~256 bits), ``nonce`` (~256 bits) and PKCE ``code_verifier`` (64 characters, ~380 bits),
   and builds the authorization URL: ``response_type=code``, ``client_id``, ``redirect_uri``,
   ``scope``, ``state``, ``nonce``, ``code_challenge`` (S256 of the verifier, RFC 7636) and
   ``code_challenge_method=S256``; with ``reauthenticate=True`` also ``prompt=login``, so
   the provider asks for the person's credentials again instead of reusing its own session
   (a fresh proof before a sensitive change). The caller stores ``pending`` server-side,
   keyed by ``pending.state`` (never in a cookie the browser could edit), sets a cookie
   carrying ``pending.state`` in the browser that starts the sign-in, and redirects the
   browser to ``url``. ``pending.next_url`` is kept verbatim: the caller validates it (no
   open redirect).
2. The person logs in at the provider, which redirects the browser to ``redirect_uri`` with
   ``code`` and ``state`` (or ``error`` and ``state``).
3. The caller finds the pending login by the ``state`` of the callback, removes it (a pending
   login is good for one attempt), refuses it unless ``state_bound_to_browser(pending,
   cookie)`` holds for the cookie set in step 1, and calls ``identity = await
   client.complete(pending, query)``. ``complete`` raises :class:`OidcError` unless every
   check below passes.
4. ``admission(identity, linked_user_exists=..., config=...)`` says what to do: ``"linked"``
   (log in the local user with that e-mail), ``"create"`` (create a local user with role
   ``user``, marked OIDC-managed, then log in) or ``"refuse"``.

The checks in ``complete``, in order
------------------------------------
- **Age**: a pending login older than ``PENDING_LOGIN_MAX_AGE`` (10 minutes, by the injected
  clock) is refused ("start again").
- **State**: the callback's ``state`` must equal ``pending.state`` (``hmac.compare_digest``).
  Together with the caller's cookie check (``state_bound_to_browser``: the browser
  bringing the callback is the one that started this sign-in) this stops login CSRF: a
  callback URL from an attacker's own sign-in, opened in the victim's browser, would
  otherwise log the victim in as the attacker.
- **Provider error**: an ``error`` parameter (the person pressed "deny", the provider refused
  the client, ...) becomes ``OidcError("the provider refused the login: access_denied")``.
  Only an error code made of ``[A-Za-z0-9_.-]`` is echoed; ``error_description`` is free text
  from the URL and goes to ``OidcError.detail`` (for the log), never into the message.
- **Issuer parameter** (RFC 9207): if the callback carries ``iss``, it must be the issuer of
  the discovery document (mix-up defence; providers that don't send it are fine).
- **Code exchange**: ``POST token_endpoint`` with ``grant_type=authorization_code``, the
  ``code``, the same ``redirect_uri`` and the PKCE ``code_verifier``, authenticated with the
  client secret (``client_secret_basic``; ``client_secret_post`` only if the provider does
  not offer basic). A code that was already used, expired, or a wrong verifier or secret is
  refused by the provider (``invalid_grant`` / ``invalid_client``) -> ``OidcError``.
- **ID token** (a JWS; encrypted ID tokens are not supported):

  - signature against the provider's JWKS, with an algorithm the provider announces in
    ``id_token_signing_alg_values_supported`` (default RS256) *and* that is asymmetric
    (RS*, PS*, ES*, EdDSA/Ed25519). ``none`` and HMAC algorithms are never accepted, so a
    token cannot be "signed" with the client secret or not at all;
  - ``iss`` equals the discovery document's ``issuer``;
  - ``aud`` contains ``client_id``; if ``aud`` has other audiences, ``azp`` must be present,
    and if ``azp`` is present it must equal ``client_id``;
  - ``exp`` is in the future and ``iat`` not in the future, both with a leeway of
    ``CLOCK_SKEW_LEEWAY`` (60 s) for clock drift between gateway and provider;
  - ``nonce`` equals ``pending.nonce`` (the token was minted for this login, not replayed);
  - ``sub`` is present; ``at_hash``, if present, matches the access token.

  The JWKS is fetched lazily and cached; a token whose ``kid`` is not in the cached set makes
  the client fetch the JWKS once more (the provider rotated its keys) before refusing.
- **Userinfo**: if the ID token carries no ``email`` (or no groups claim while
  ``allowed_groups`` is configured), the client asks the ``userinfo_endpoint`` with the access
  token. Its ``sub`` must equal the ID token's ``sub``. ID token claims win; userinfo fills the
  gaps. ``email`` and ``email_verified`` are always taken together from the same source.

E-mail verification
-------------------
Local accounts are linked by e-mail, so an e-mail address is only trusted when the provider
says it verified it: ``email_verified`` is ``true`` (a JSON boolean, or the string ``"true"``
that some providers send). A missing ``email_verified`` counts as *not* verified: otherwise
anyone who can register at the provider with someone else's address would log in as that
person here. ``trusted_email`` returns the address only if it is trusted, and ``admission``
refuses every identity without a trusted e-mail - also a member of an allowed group, because
the local user that login creates is identified by that address.

Some providers never send ``email_verified`` (Microsoft Entra ID) or send ``false`` for
addresses an administrator typed in (recent Authentik). For a provider where *only the
administrator* sets e-mail addresses, ``OidcConfig.trust_unverified_email=True`` trusts the
``email`` claim as is. Never set it for a provider with self-registration.

Trust in the provider
---------------------
Whoever controls the provider (or its signing key) can log in as any local user that has an
e-mail address, including admins, and as any allowed e-mail or group member. Link only
accounts whose e-mail the provider is authoritative for.

Transport
---------
Every URL the client fetches or sends the browser to - the discovery URL, the issuer, the
authorization, token, JWKS and userinfo endpoints - must be ``https``, or ``http`` to a
loopback host (``localhost``, ``127.0.0.0/8``, ``::1``: a provider on the same machine, and
the provider in the tests). Plain http to any other host is refused: the client secret, the
code and the signing keys would cross the network in clear text. Certificates are always
verified (httpx defaults; ``SSL_CERT_FILE`` adds a private CA). The ``redirect_uri`` is the
gateway's own URL and is not restricted here (a gateway without TLS in the home LAN is
allowed; the provider decides whether it accepts such a redirect URI).

One ``OidcClient`` lives as long as the application and is used from one event loop. It owns
its ``httpx.AsyncClient`` unless one is passed in (then the caller closes that one).

Where it lives
--------------
This module holds the configuration, the pending login and the decisions on an identity
(``trusted_email``, ``admission``), which the login routes and the account service use on
every gateway. The client that talks to the provider - discovery, code exchange, the ID
token's checks - is :mod:`gateway.auth.oidc_client`: it needs authlib and joserfc (about
5 MB of resident memory), which only a gateway with ``[oidc]`` configured loads.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from gateway.i18n import Message

__all__ = [
    "ACCEPTED_SIGNING_ALGORITHMS",
    "CLOCK_SKEW_LEEWAY",
    "PENDING_LOGIN_MAX_AGE",
    "WELL_KNOWN_SUFFIX",
    "Admission",
    "OidcConfig",
    "OidcError",
    "OidcIdentity",
    "PendingLogin",
    "admission",
    "is_secure_url",
    "state_bound_to_browser",
    "trusted_email",
]

WELL_KNOWN_SUFFIX = "/.well-known/openid-configuration"
PENDING_LOGIN_MAX_AGE = 600.0
"""Seconds between ``begin`` and ``complete`` after which the login must start again."""
CLOCK_SKEW_LEEWAY = 60
"""Seconds of clock difference tolerated in the ID token's ``exp`` and ``iat``."""
ACCEPTED_SIGNING_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "Ed25519",
)
"""Asymmetric JWS algorithms only: never ``none``, never HMAC with the client secret."""

type Admission = Literal["linked", "create", "refuse"]


class OidcError(Exception):
    """A login through the provider failed.

    ``str(error)`` is safe to show to the person logging in (no secrets, no text copied from
    the URL except a sanitised error code); :meth:`translated` is the same in the reader's
    language (``message`` is a catalog template filled in with ``params``). ``detail`` has
    more for the log.
    """

    def __init__(self, message: str | Message, *, detail: str = "", **params: object) -> None:
        self.text = message if isinstance(message, Message) else Message(message, **params)
        super().__init__(str(self.text))
        self.detail = detail

    def translated(self) -> str:
        """The message in the reader's language."""
        return self.text.translated()


def is_secure_url(url: str) -> bool:
    """``https``, or ``http`` to a loopback host (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    if parts.scheme != "http":
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class OidcConfig:
    """How to reach one provider and whom it may log in. Checked when constructed."""

    discovery_url: str
    """``https://issuer/.well-known/openid-configuration``."""
    client_id: str
    client_secret: str
    redirect_uri: str
    """The gateway's callback, registered at the provider exactly like this."""
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    allowed_emails: tuple[str, ...] = ()
    """Verified addresses that may log in without a local user (one is created); any case."""
    allowed_groups: tuple[str, ...] = ()
    """Members of any of these groups (exact, case-sensitive) may log in likewise."""
    groups_claim: str = "groups"
    trust_unverified_email: bool = False
    """Trust ``email`` without ``email_verified: true``; only for admin-managed providers."""
    timeout: float = 10.0
    """Seconds for each request to the provider."""

    def __post_init__(self) -> None:
        example = "https://auth.example.com/realms/home/.well-known/openid-configuration"
        if not self.discovery_url.endswith(WELL_KNOWN_SUFFIX):
            raise ValueError(
                f"OIDC discovery URL {self.discovery_url!r} does not end with "
                f"{WELL_KNOWN_SUFFIX}; example: {example}"
            )
        if not is_secure_url(self.discovery_url):
            raise ValueError(
                f"OIDC discovery URL {self.discovery_url!r} must use https (plain http only "
                f"to localhost or 127.0.0.1); example: {example}"
            )
        if not self.client_id or not self.client_secret:
            raise ValueError(
                "OIDC needs the client id and the client secret of a confidential client "
                "registered at the provider"
            )
        redirect = urlsplit(self.redirect_uri)
        if redirect.scheme not in ("https", "http") or not redirect.netloc or redirect.fragment:
            raise ValueError(
                f"OIDC redirect URI {self.redirect_uri!r} must be an absolute http(s) URL "
                "without a fragment; example: https://gateway.example.com/.gateway/oidc/callback"
            )
        if "openid" not in self.scopes:
            raise ValueError(f"OIDC scopes {list(self.scopes)} must include 'openid'")
        if not self.timeout > 0:
            raise ValueError(
                f"OIDC timeout must be a positive number of seconds, not {self.timeout}"
            )


@dataclass(frozen=True)
class PendingLogin:
    """What the caller keeps server-side, keyed by ``state``, between begin and complete."""

    state: str
    nonce: str
    code_verifier: str
    next_url: str
    created_at: float
    reauthenticate: bool = False
    """The provider was asked to check the person's credentials again (``prompt=login``)."""


def state_bound_to_browser(pending: PendingLogin, cookie_value: str | None) -> bool:
    """Whether the browser bringing the callback started this sign-in: it carries the
    cookie with ``pending.state`` that the start of the sign-in set (constant time)."""
    if not cookie_value:
        return False
    return hmac.compare_digest(cookie_value.encode(), pending.state.encode())


@dataclass(frozen=True)
class OidcIdentity:
    """The person the provider vouched for, from the validated ID token (and userinfo)."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    groups: tuple[str, ...]
    preferred_username: str | None = None


def trusted_email(identity: OidcIdentity, config: OidcConfig) -> str | None:
    """The identity's e-mail if it may be used to find or create a local user, else None.

    Look the local user up by this address case-insensitively.
    """
    if identity.email is None:
        return None
    if identity.email_verified or config.trust_unverified_email:
        return identity.email
    return None


def admission(identity: OidcIdentity, *, linked_user_exists: bool, config: OidcConfig) -> Admission:
    """Decide whether the provider's user may log in, and how.

    ``linked_user_exists``: a local user has the address ``trusted_email(identity, config)``
    (compared case-insensitively). Whether that user is disabled is the caller's business.
    """
    email = trusted_email(identity, config)
    if email is None:
        return "refuse"
    if linked_user_exists:
        return "linked"
    allowed = {address.strip().casefold() for address in config.allowed_emails}
    if email.strip().casefold() in allowed:
        return "create"
    if set(identity.groups) & set(config.allowed_groups):
        return "create"
    return "refuse"
