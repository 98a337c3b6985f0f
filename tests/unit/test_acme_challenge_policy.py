"""The ACME HTTP-01 window as a rule table: connection admission and per-request answers."""

from __future__ import annotations

import pytest

from gateway.policy.acme_challenge import (
    ChallengeAction,
    ChallengeFacts,
    Screening,
    admit_outside_connection,
    challenge_token,
    decide_challenge_request,
    screen_outside_bytes,
)

TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
OTHER = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
PENDING = {TOKEN: f"{TOKEN}.thumbprint"}
PATH = f"/.well-known/acme-challenge/{TOKEN}"

ANSWER, PASS, CLOSE = ChallengeAction.ANSWER, ChallengeAction.PASS, ChallengeAction.CLOSE

# (listener, over_tls, method, path, allowlisted, pending, expected[, has_body])
REQUESTS = [
    # The one thing the window admits, for any client.
    ("web", False, "GET", PATH, False, PENDING, ANSWER),
    ("web", False, "GET", PATH, True, PENDING, ANSWER),
    # Everything else, from outside: closed.
    ("web", False, "HEAD", PATH, False, PENDING, CLOSE),
    ("web", False, "POST", PATH, False, PENDING, CLOSE),
    ("web", False, "get", PATH, False, PENDING, CLOSE),
    ("web", True, "GET", PATH, False, PENDING, CLOSE),
    ("ws", False, "GET", PATH, False, PENDING, CLOSE),
    ("admin", False, "GET", PATH, False, PENDING, CLOSE),
    ("web", False, "GET", "/", False, PENDING, CLOSE),
    ("web", False, "GET", "/.gateway/login", False, PENDING, CLOSE),
    ("web", False, "GET", f"/.well-known/acme-challenge/{OTHER}", False, PENDING, CLOSE),
    ("web", False, "GET", PATH.upper(), False, PENDING, CLOSE),
    ("web", False, "GET", PATH + "?x=1", False, PENDING, CLOSE),
    ("web", False, "GET", PATH + "/", False, PENDING, CLOSE),
    ("web", False, "GET", PATH + "/../../", False, PENDING, CLOSE),
    ("web", False, "GET", PATH + "#f", False, PENDING, CLOSE),
    ("web", False, "GET", "/.well-known/acme-challenge/", False, PENDING, CLOSE),
    ("web", False, "GET", "/.well-known/acme-challenge/../../etc", False, PENDING, CLOSE),
    ("web", False, "GET", f"//.well-known/acme-challenge/{TOKEN}", False, PENDING, CLOSE),
    ("web", False, "GET", f"http://x{PATH}", False, PENDING, CLOSE),
    ("web", False, "GET", PATH[:-1], False, PENDING, CLOSE),
    ("web", False, "GET", PATH, False, PENDING, CLOSE, True),
    # After the order: nothing pending, the same request is closed.
    ("web", False, "GET", PATH, False, {}, CLOSE),
    # Allowlisted clients: everything that is not an answer takes the ordinary path.
    ("web", False, "GET", "/", True, PENDING, PASS),
    ("web", True, "GET", PATH, True, PENDING, PASS),
    ("web", False, "POST", PATH, True, PENDING, PASS),
    ("web", False, "GET", PATH, True, {}, PASS),
    ("admin", False, "GET", PATH, True, PENDING, PASS),
]


@pytest.mark.parametrize("row", REQUESTS)
def test_request_decisions(row: tuple[object, ...]) -> None:
    listener, over_tls, method, path, allowlisted, pending, expected, *body = row
    assert isinstance(listener, str) and isinstance(method, str) and isinstance(path, str)
    assert isinstance(pending, dict) and isinstance(expected, ChallengeAction)
    facts = ChallengeFacts(
        listener, bool(over_tls), method, path, bool(allowlisted), has_body=bool(body)
    )
    decision = decide_challenge_request(facts, pending)
    assert decision.action is expected
    if expected is ANSWER:
        assert decision.key_authorization == PENDING[TOKEN]
        assert decision.token == TOKEN
    else:
        assert decision.key_authorization == ""


@pytest.mark.parametrize(
    ("listener", "pending", "expected"),
    [
        ("web", True, True),
        ("web", False, False),
        ("ws", True, False),
        ("admin", True, False),
        ("", True, False),
    ],
)
def test_outside_connections(listener: str, pending: bool, expected: bool) -> None:
    assert admit_outside_connection(listener, pending=pending) is expected


@pytest.mark.parametrize(
    ("path", "token"),
    [
        (PATH, TOKEN),
        ("/.well-known/acme-challenge/", None),
        ("/.well-known/acme-challenge/a.b", None),
        ("/.well-known/acme-challenge/a%2F", None),
        ("/.well-known/acme-challengeX", None),
        ("/", None),
    ],
)
def test_challenge_token(path: str, token: str | None) -> None:
    assert challenge_token(path) == token


HEAD = f"GET {PATH} HTTP/1.1\r\nHost: cemm.example.com\r\nUser-Agent: CA\r\n\r\n".encode()

SCREENS = [
    (b"", Screening.WAIT),
    (b"G", Screening.WAIT),
    (b"GET /.well-known/acme-", Screening.WAIT),
    (HEAD[:-2], Screening.WAIT),
    (HEAD[:-4], Screening.WAIT),
    (f"GET {PATH} HTTP/1.1\r\nHo".encode(), Screening.WAIT),
    (f"GET {PATH} HTTP/1.1 x\r\nHost: y".encode(), Screening.CLOSE),
    (f"GET {PATH} HTTP/1.1\r\nBad Header: x\r\nHost: y".encode(), Screening.CLOSE),
    (f"GET {PATH}/x".encode(), Screening.WAIT),
    (HEAD, Screening.ADMIT),
    (HEAD.replace(b"HTTP/1.1", b"HTTP/1.0"), Screening.ADMIT),
    (f"GET {PATH} HTTP/1.1\r\n\r\n".encode(), Screening.ADMIT),
    (HEAD + b"GET / HTTP/1.1\r\n\r\n", Screening.CLOSE),
    (HEAD + b"x", Screening.CLOSE),
    (HEAD.replace(b"GET", b"POST"), Screening.CLOSE),
    (HEAD.replace(b"GET", b"HEAD"), Screening.CLOSE),
    (HEAD.replace(b"User-Agent: CA", b"Content-Length: 0"), Screening.CLOSE),
    # A CA never sends Expect; 100-continue would draw an interim "100 Continue".
    (HEAD.replace(b"User-Agent: CA", b"Expect: 100-continue"), Screening.CLOSE),
    (HEAD.replace(b"User-Agent: CA", b"EXPECT: x"), Screening.CLOSE),
    (HEAD.replace(b"User-Agent: CA", b"Transfer-Encoding: chunked"), Screening.CLOSE),
    (HEAD.replace(b"User-Agent: CA", b"Bad Header: x"), Screening.CLOSE),
    (HEAD.replace(b"User-Agent: CA", b"X: \x00"), Screening.CLOSE),
    (HEAD.replace(b"User-Agent: CA", b" folded"), Screening.CLOSE),
    (HEAD.replace(b"\r\n", b"\n"), Screening.CLOSE),
    (HEAD.replace(b"HTTP/1.1", b"HTTP/2.0"), Screening.CLOSE),
    (HEAD.replace(PATH.encode(), PATH.encode() + b"?x"), Screening.CLOSE),
    (b"GET / HTTP/1.1\r\n\r\n", Screening.CLOSE),
    (b"GARBAGE\r\n\r\n", Screening.CLOSE),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", Screening.CLOSE),
    (b"GET /.well-known/acme-challenge/" + b"a" * 5000, Screening.CLOSE),
]


@pytest.mark.parametrize(("data", "expected"), SCREENS)
def test_screen_outside_bytes(data: bytes, expected: Screening) -> None:
    assert screen_outside_bytes(data) is expected
