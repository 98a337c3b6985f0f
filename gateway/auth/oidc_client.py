"""The OpenID Connect client: discovery, the authorization URL, the code exchange, the ID
token's checks and userinfo, as specified in :mod:`gateway.auth.oidc` (the flow, the checks in
``complete``, e-mail verification and transport).

Only a gateway with ``[oidc]`` configured imports this module (``gateway/startup.py``), so
authlib and joserfc are not loaded otherwise.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from gateway.auth.oidc import (
    ACCEPTED_SIGNING_ALGORITHMS,
    CLOCK_SKEW_LEEWAY,
    PENDING_LOGIN_MAX_AGE,
    WELL_KNOWN_SUFFIX,
    OidcConfig,
    OidcError,
    OidcIdentity,
    PendingLogin,
    is_secure_url,
)
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.i18n import N_, Message

__all__ = ["OidcClient"]

_STATE_LENGTH = 43  # characters of [A-Za-z0-9]: ~256 bits
_NONCE_LENGTH = 43
_CODE_VERIFIER_LENGTH = 64  # RFC 7636 allows 43..128 unreserved characters
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_CLAIM_NAMES = re.compile(r"[A-Za-z0-9_.,\-]{1,100}")
_JSON = {"Accept": "application/json"}


@dataclass(frozen=True)
class _ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    signing_algorithms: tuple[str, ...]
    token_endpoint_auth_method: str


class OidcClient:
    """The relying party for one provider. See the module docstring for the flow."""

    def __init__(
        self,
        config: OidcConfig,
        *,
        clock: Clock = SYSTEM_CLOCK,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=config.timeout, follow_redirects=False)
        self._metadata: _ProviderMetadata | None = None
        self._keys: KeySet | None = None

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def begin(
        self, next_url: str, *, reauthenticate: bool = False
    ) -> tuple[str, PendingLogin]:
        """Start a login: the URL to send the browser to, and what to keep until the callback.
        ``reauthenticate``: ask the provider to check the credentials again (``prompt=login``)."""
        metadata = await self._provider_metadata()
        pending = PendingLogin(
            state=generate_token(_STATE_LENGTH),
            nonce=generate_token(_NONCE_LENGTH),
            code_verifier=generate_token(_CODE_VERIFIER_LENGTH),
            next_url=next_url,
            created_at=self._clock.now(),
            reauthenticate=reauthenticate,
        )
        extra = {"prompt": "login"} if reauthenticate else {}
        url = prepare_grant_uri(
            metadata.authorization_endpoint,
            client_id=self.config.client_id,
            response_type="code",
            redirect_uri=self.config.redirect_uri,
            scope=list(self.config.scopes),
            state=pending.state,
            nonce=pending.nonce,
            code_challenge=create_s256_code_challenge(pending.code_verifier),
            code_challenge_method="S256",
            **extra,
        )
        return url, pending

    async def complete(
        self, pending: PendingLogin, callback_query: Mapping[str, str]
    ) -> OidcIdentity:
        """Finish a login from the callback's query parameters; raises ``OidcError``."""
        if self._clock.now() - pending.created_at > PENDING_LOGIN_MAX_AGE:
            raise OidcError(
                N_("the login took longer than 10 minutes; please start again"),
                detail=f"pending login created at {pending.created_at}",
            )
        state = callback_query.get("state", "")
        if not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise OidcError(
                N_(
                    "this login response does not belong to the login you started "
                    "(state mismatch); please start again"
                )
            )
        if "error" in callback_query:
            error_code = _error_code(callback_query["error"])
            raise OidcError(
                N_("the provider refused the login: {error}"),
                error=error_code,
                detail=f"error_description={callback_query.get('error_description', '')[:300]!r}",
            )

        metadata = await self._provider_metadata()
        returned_issuer = callback_query.get("iss")
        if returned_issuer is not None and returned_issuer != metadata.issuer:
            raise OidcError(
                N_(
                    "this login response comes from a different provider (iss mismatch); "
                    "please start again"
                ),
                detail=f"iss={returned_issuer[:300]!r}, expected {metadata.issuer!r}",
            )
        code = callback_query.get("code")
        if not code:
            raise OidcError(N_("the provider's response carries no authorization code"))

        access_token, id_token = await self._exchange_code(metadata, code, pending)
        claims = await self._validate_id_token(metadata, id_token, access_token, pending.nonce)
        userinfo: Mapping[str, Any] = {}
        if "email" not in claims or (
            self.config.allowed_groups and self.config.groups_claim not in claims
        ):
            userinfo = await self._userinfo(metadata, access_token, claims["sub"])
        return _identity(metadata.issuer, claims, userinfo, self.config.groups_claim)

    # --- provider requests ---------------------------------------------------------------

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, url, timeout=self.config.timeout, **kwargs)
        except httpx.HTTPError as error:
            raise OidcError(
                N_("could not reach the identity provider; please try again later"),
                detail=f"{method} {url}: {error!r}",
            ) from error

    async def _provider_metadata(self) -> _ProviderMetadata:
        if self._metadata is None:
            response = await self._request("GET", self.config.discovery_url, headers=_JSON)
            document = _json_object(response, Message(N_("discovery document")))
            self._metadata = _parse_discovery(document, self.config)
        return self._metadata

    async def _signing_keys(self, metadata: _ProviderMetadata, *, refresh: bool) -> KeySet:
        if self._keys is None or refresh:
            response = await self._request("GET", metadata.jwks_uri, headers=_JSON)
            document = _json_object(response, Message(N_("signing keys (JWKS)")))
            try:
                self._keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
            except (JoseError, ValueError, KeyError, TypeError) as error:
                raise OidcError(
                    N_("the identity provider publishes no usable signing keys (JWKS)"),
                    detail=repr(error),
                ) from error
        return self._keys

    async def _exchange_code(
        self, metadata: _ProviderMetadata, code: str, pending: PendingLogin
    ) -> tuple[str, str]:
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=self.config.redirect_uri,
            code_verifier=pending.code_verifier,
        )
        headers = {**_JSON, "Content-Type": "application/x-www-form-urlencoded"}
        client_auth = ClientAuth(
            self.config.client_id, self.config.client_secret, metadata.token_endpoint_auth_method
        )
        url, headers, body = client_auth.prepare("POST", metadata.token_endpoint, headers, body)
        response = await self._request("POST", url, headers=headers, content=body)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise OidcError(
                N_("the identity provider's token endpoint did not answer with JSON"),
                detail=f"HTTP {response.status_code}",
            )
        if response.status_code != 200 or "error" in payload:
            error = _error_code(payload.get("error"))
            raise OidcError(
                N_("the provider did not accept the login ({error}); please start again"),
                error=error,
                detail=f"HTTP {response.status_code}, "
                f"error_description={str(payload.get('error_description', ''))[:300]!r}",
            )
        access_token = payload.get("access_token")
        id_token = payload.get("id_token")
        token_type = payload.get("token_type")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise OidcError(
                N_("the identity provider sent no ID token; is 'openid' among the client's scopes?")
            )
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise OidcError(
                N_("the identity provider sent an unsupported token type {type}"),
                type=repr(token_type),
            )
        return access_token, id_token

    async def _validate_id_token(
        self, metadata: _ProviderMetadata, id_token: str, access_token: str, nonce: str
    ) -> dict[str, Any]:
        registry = JWSRegistry(
            algorithms=list(metadata.signing_algorithms), strict_check_header=False
        )
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": metadata.issuer},
            "aud": {"essential": True, "value": self.config.client_id},
            "sub": {"essential": True},
            "nonce": {"essential": True, "value": nonce},
        }
        params = {"nonce": nonce, "client_id": self.config.client_id, "access_token": access_token}
        try:
            try:
                keys = await self._signing_keys(metadata, refresh=False)
                token = jwt.decode(id_token, keys, registry=registry)
            except InvalidKeyIdError:
                # Unknown kid: the provider may have rotated its keys since we cached them.
                keys = await self._signing_keys(metadata, refresh=True)
                token = jwt.decode(id_token, keys, registry=registry)
            claims = CodeIDToken(token.claims, token.header, options, params)
            claims.validate(now=int(self._clock.now()), leeway=CLOCK_SKEW_LEEWAY)
        except ExpiredTokenError as error:
            raise _id_token_error(
                Message(N_("it has expired (are the clocks of gateway and provider right?)")),
                error,
            ) from error
        except ClaimError as error:
            raise _id_token_error(_claim_problem(error.claim), error) from error
        except BadSignatureError as error:
            raise _id_token_error(Message(N_("its signature is invalid")), error) from error
        except InvalidKeyIdError as error:
            raise _id_token_error(
                Message(N_("it is signed with a key the provider does not publish")), error
            ) from error
        except UnsupportedAlgorithmError as error:
            raise _id_token_error(
                Message(N_("it is signed with an algorithm the gateway does not accept")), error
            ) from error
        except (JoseError, ValueError) as error:
            raise _id_token_error(Message(N_("it is malformed")), error) from error
        return dict(claims)

    async def _userinfo(
        self, metadata: _ProviderMetadata, access_token: str, subject: str
    ) -> Mapping[str, Any]:
        if metadata.userinfo_endpoint is None:
            return {}
        response = await self._request(
            "GET",
            metadata.userinfo_endpoint,
            headers={**_JSON, "Authorization": f"Bearer {access_token}"},
        )
        userinfo = _json_object(response, Message(N_("userinfo answer")))
        if userinfo.get("sub") != subject:
            raise OidcError(
                N_(
                    "the identity provider's userinfo answer is about a different user "
                    "(sub mismatch)"
                )
            )
        return userinfo


# --- helpers ------------------------------------------------------------------------------


def _parse_discovery(document: Mapping[str, Any], config: OidcConfig) -> _ProviderMetadata:
    def problem(text: str) -> OidcError:
        return OidcError(
            N_(
                "the identity provider's discovery document is not usable: {problem}; "
                "ask the administrator to check the OIDC settings"
            ),
            problem=text,
        )

    def optional_endpoint(name: str) -> str | None:
        value = document.get(name)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise problem(f"'{name}' is not a URL")
        if not is_secure_url(value):
            raise problem(f"'{name}' {value!r} is not https")
        return value

    def endpoint(name: str) -> str:
        value = optional_endpoint(name)
        if value is None:
            raise problem(f"'{name}' is missing")
        return value

    issuer = endpoint("issuer")
    # OpenID Connect Discovery 1.0 section 4.3: the issuer must be the discovery URL's prefix.
    if issuer.rstrip("/") + WELL_KNOWN_SUFFIX != config.discovery_url:
        raise problem(f"issuer {issuer!r} does not match the discovery URL")
    announced = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = tuple(alg for alg in ACCEPTED_SIGNING_ALGORITHMS if alg in announced)
    if not algorithms:
        raise problem(
            f"ID tokens are signed with {announced}, the gateway accepts "
            f"{list(ACCEPTED_SIGNING_ALGORITHMS)}"
        )
    auth_methods = document.get("token_endpoint_auth_methods_supported") or []
    auth_method = (
        "client_secret_post"
        if "client_secret_basic" not in auth_methods and "client_secret_post" in auth_methods
        else "client_secret_basic"
    )
    return _ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=endpoint("authorization_endpoint"),
        token_endpoint=endpoint("token_endpoint"),
        jwks_uri=endpoint("jwks_uri"),
        userinfo_endpoint=optional_endpoint("userinfo_endpoint"),
        signing_algorithms=algorithms,
        token_endpoint_auth_method=auth_method,
    )


def _json_object(response: httpx.Response, what: Message) -> dict[str, Any]:
    if response.status_code != 200:
        raise OidcError(
            N_("the identity provider answered HTTP {status} for its {what}"),
            status=response.status_code,
            what=what,
            detail=f"{response.request.method} {response.request.url}",
        )
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise OidcError(
            N_("the identity provider's {what} is not a JSON object"),
            what=what,
            detail=f"{response.request.method} {response.request.url}: "
            f"{response.headers.get('content-type')}",
        )
    return document


def _error_code(value: object) -> str:
    """An OAuth error code from the provider, or a placeholder if it looks like anything else."""
    if isinstance(value, str) and _ERROR_CODE.fullmatch(value):
        return value
    return "unknown_error"


def _claim_problem(claim: str) -> Message:
    if claim == "nonce":
        return Message(N_("its nonce does not match this login (a replayed or foreign token)"))
    if claim == "aud" or claim == "azp":
        return Message(N_("it was issued for another client ({claim})"), claim=claim)
    if claim == "iss":
        return Message(N_("it was issued by another provider (iss)"))
    if claim in ("iat", "nbf"):
        return Message(
            N_("it is not valid yet ({claim}; are the clocks of gateway and provider right?)"),
            claim=claim,
        )
    names = claim if _CLAIM_NAMES.fullmatch(claim) else "?"
    return Message(N_("claim {names} is missing or invalid"), names=names)


def _id_token_error(problem: Message, error: Exception) -> OidcError:
    return OidcError(
        N_("the provider's ID token was refused: {problem}; please start again"),
        detail=repr(error),
        problem=problem,
    )


def _string_claim(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _is_true(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _groups(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(group for group in value if isinstance(group, str))
    return ()


def _identity(
    issuer: str, claims: Mapping[str, Any], userinfo: Mapping[str, Any], groups_claim: str
) -> OidcIdentity:
    # ID token claims win; userinfo fills in. email and email_verified come as a pair.
    email_source = claims if "email" in claims else userinfo
    groups_source = claims if groups_claim in claims else userinfo
    return OidcIdentity(
        issuer=issuer,
        subject=claims["sub"],
        email=_string_claim(email_source, "email"),
        email_verified=_is_true(email_source.get("email_verified")),
        name=_string_claim(claims, "name") or _string_claim(userinfo, "name"),
        groups=_groups(groups_source.get(groups_claim)),
        preferred_username=(
            _string_claim(claims, "preferred_username")
            or _string_claim(userinfo, "preferred_username")
        ),
    )
