"""The ACME HTTP-01 window: who may fetch a challenge answer, and what else they get.

A certificate authority proves that the gateway controls a name by fetching
``http://<name>/.well-known/acme-challenge/<token>`` on port 80 from addresses nobody
can predict. The allowlist would refuse them, so - and only for that - the gateway opens
a narrow window while an order is pending. The rules, over plain data:

Connections (:func:`admit_outside_connection`)
    An address the allowlist refuses may connect only to the **web** listener, and only
    while at least one challenge token is pending. Every other listener, and every
    moment with nothing pending, refuses it as before (closed before TLS or HTTP).

The first bytes (:func:`screen_outside_bytes`)
    Before HTTP is parsed, the bytes an outside connection sent first must be, in full, a
    request head of the one shape the CA sends: ``GET /.well-known/acme-challenge/<token>
    HTTP/1.1`` (or 1.0), header lines of a token name and printable value, the empty line,
    and nothing after it; no ``Content-Length``, ``Transfer-Encoding`` or ``Expect`` (a
    CA never sends one; ``Expect: 100-continue`` would draw an interim answer); at most
    ``MAX_HEAD`` bytes. While the bytes so far could still become such a head the
    connection waits for more (the header timeout still applies); anything else is closed
    at once. So the HTTP parser never sees what an outside client made up, and its own
    answers (a ``400`` for a malformed request) never reach one; TLS is closed here too.

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

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
WEB_LISTENER = "web"
# RFC 8555 section 8.3: a token is base64url without padding (at least 128 bits).
_TOKEN_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


MAX_HEAD = 4096
_LEADER = b"GET " + CHALLENGE_PREFIX.encode()
_HEAD_RE = re.compile(
    rb"GET /\.well-known/acme-challenge/[A-Za-z0-9_-]+ HTTP/1\.[01]\r\n"
    rb"((?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[ \t]*[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?"
    rb"[ \t]*\r\n)*)\r\n"
)
_REFUSED_HEADERS = (b"content-length", b"transfer-encoding", b"expect")


class Screening(Enum):
    ADMIT = "admit"
    WAIT = "wait"
    CLOSE = "close"


def screen_outside_bytes(data: bytes) -> Screening:
    """The first bytes of an outside connection: a whole challenge request head (admit),
    the beginning of one (wait), or anything else (close)."""
    if len(data) > MAX_HEAD:
        return Screening.CLOSE
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if _LEADER.startswith(data):
            return Screening.WAIT
        if not data.startswith(_LEADER):
            return Screening.CLOSE
        # The lines complete so far must already have the head's shape.
        complete = data[: data.rfind(b"\r\n") + 2] if b"\r\n" in data else b""
        if b"\n" in data.replace(b"\r\n", b""):
            return Screening.CLOSE
        if complete and _HEAD_RE.fullmatch(complete + b"\r\n") is None:
            return Screening.CLOSE
        return Screening.WAIT
    match = _HEAD_RE.fullmatch(data)
    if match is None:
        return Screening.CLOSE
    for line in match.group(1).split(b"\r\n"):
        if line.split(b":", 1)[0].lower() in _REFUSED_HEADERS:
            return Screening.CLOSE
    return Screening.ADMIT


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
