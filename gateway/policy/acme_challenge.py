"""The ACME HTTP-01 window: who may fetch a challenge answer, and what else they get.

A certificate authority proves that the gateway controls a name by fetching
``http://<name>/.well-known/acme-challenge/<token>`` on port 80 from addresses nobody
can predict. The allowlist would refuse them, so - and only for that - the gateway opens
a narrow window while an order is pending. The rules, over plain data:

Connections (:func:`admit_outside_connection`)
    An address the allowlist refuses may connect only to the **web** listener, and only
    while at least one challenge token is pending. Every other listener, and every
    moment with nothing pending, refuses it as before (closed before TLS or HTTP).

Requests (:func:`decide_challenge_request`)
    A request is **answered** with the token's key authorization when all of these hold:
    it arrived on the web listener, over plain HTTP (not TLS: the CA speaks HTTP on
    port 80), its method is exactly ``GET``, and its path is exactly
    ``/.well-known/acme-challenge/<token>`` with no query, no fragment, no further
    segment and a token that is pending *now* (compared whole; case matters), and it
    announces no body.
    Any client gets that answer, allowlisted or not, so the HTTPS redirect and the login
    never stand between the CA and the token.

    A client the allowlist admitted gets **pass** for everything else: the ordinary
    rules apply, exactly as without ACME.

    A client admitted only through the window gets **close** for everything else: the
    connection is closed with no status line and no body read - another path, another
    method, a token that is not (or no longer) pending, TLS, the ws or admin listener.
    A connection opened during an order therefore gets nothing after it either.

Never raises; pure: no sockets, no clock, no mitmproxy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
WEB_LISTENER = "web"
# RFC 8555 section 8.3: a token is base64url without padding (at least 128 bits).
_TOKEN_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class ChallengeAction(Enum):
    ANSWER = "answer"
    PASS = "pass"  # noqa: S105 - an action, not a password
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class ChallengeFacts:
    """What the gateway knows about one request when it asks."""

    listener: str
    over_tls: bool
    method: str
    path: str
    """The request target as received (path and query)."""
    allowlisted: bool
    """The allowlist admitted the client; False for a client admitted only by the window."""
    has_body: bool = False
    """``Content-Length`` other than 0, or ``Transfer-Encoding``."""


@dataclass(frozen=True, slots=True)
class ChallengeDecision:
    action: ChallengeAction
    key_authorization: str = ""
    token: str = ""


def admit_outside_connection(listener: str, *, pending: bool) -> bool:
    """May an address the allowlist refuses connect to ``listener`` now?"""
    return pending and listener == WEB_LISTENER


def challenge_token(path: str) -> str | None:
    """The token in an exact challenge path, None for any other target."""
    if not path.startswith(CHALLENGE_PREFIX):
        return None
    token = path[len(CHALLENGE_PREFIX) :]
    if not token or not set(token) <= _TOKEN_CHARACTERS:
        return None
    return token


def decide_challenge_request(
    facts: ChallengeFacts, pending: Mapping[str, str]
) -> ChallengeDecision:
    """Answer, pass or close (see the module's docstring). ``pending`` maps each pending
    token to its key authorization."""
    token = challenge_token(facts.path)
    if (
        token is not None
        and facts.listener == WEB_LISTENER
        and not facts.over_tls
        and facts.method == "GET"
        and not facts.has_body
    ):
        answer = pending.get(token)
        if answer:
            return ChallengeDecision(ChallengeAction.ANSWER, answer, token)
    if facts.allowlisted:
        return ChallengeDecision(ChallengeAction.PASS)
    return ChallengeDecision(ChallengeAction.CLOSE)
