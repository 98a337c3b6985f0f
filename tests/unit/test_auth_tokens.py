"""Tests of tokens and the post-login redirect check (gateway/auth/tokens.py)."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.auth.tokens import (
    csrf_matches,
    is_safe_next,
    new_api_token,
    new_csrf_token,
    new_public_id,
    new_session_token,
    parse_api_token,
    token_hash,
)

# --- session tokens ------------------------------------------------------------------------


def test_session_token_is_256_bit_urlsafe_without_padding() -> None:
    tokens = {new_session_token() for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
        assert len(base64.urlsafe_b64decode(token + "=")) == 32


def test_token_hash_is_sha256_hex() -> None:
    token = new_session_token()
    assert token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    assert token_hash(token) != token_hash(new_session_token())


def test_public_id_is_short_alphanumeric_and_random() -> None:
    ids = {new_public_id() for _ in range(1000)}
    assert len(ids) == 1000
    for public_id in ids:
        # No "-" or "_": an id starting with "-" would be read as an option by the CLI.
        assert re.fullmatch(r"[A-Za-z0-9]{12}", public_id)


# --- API tokens ----------------------------------------------------------------------------


def test_api_token_format_and_id() -> None:
    token, token_id = new_api_token()
    assert re.fullmatch(r"cgw_[a-z0-9]{8}_[A-Za-z0-9]{43}", token)
    assert token.split("_")[1] == token_id


def test_api_tokens_are_unique() -> None:
    tokens = [new_api_token() for _ in range(200)]
    assert len({token for token, _ in tokens}) == 200
    assert len({token_id for _, token_id in tokens}) == 200


def test_api_token_parses_back_into_id_and_secret() -> None:
    token, token_id = new_api_token()
    parsed = parse_api_token(token)
    assert parsed is not None
    assert parsed == (token_id, token.split("_", 2)[2])


VALID_ID = "abcd1234"
VALID_SECRET = "A" * 21 + "z" * 21 + "9"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "cgw",
        "cgw_",
        f"cgw_{VALID_ID}",
        f"cgw_{VALID_ID}_",
        f"cgw_{VALID_ID}_{VALID_SECRET[:-1]}",  # secret too short
        f"cgw_{VALID_ID}_{VALID_SECRET}A",  # secret too long
        f"cgw_abc123_{VALID_SECRET}",  # id too short
        f"cgw_ABCD1234_{VALID_SECRET}",  # id must be lower case
        f"CGW_{VALID_ID}_{VALID_SECRET}",
        f"xyz_{VALID_ID}_{VALID_SECRET}",
        f"cgw-{VALID_ID}-{VALID_SECRET}",
        f"cgw_{VALID_ID}_{VALID_SECRET[:-1]}-",  # "-" is not in the secret alphabet
        f"cgw_{VALID_ID}_{VALID_SECRET[:-1]}é",
        f" cgw_{VALID_ID}_{VALID_SECRET}",
        f"cgw_{VALID_ID}_{VALID_SECRET}\n",
        f"Bearer cgw_{VALID_ID}_{VALID_SECRET}",
        f"cgw_{VALID_ID}_{VALID_SECRET}" * 2,
        None,
        b"cgw_abcd1234_x",
    ],
)
def test_malformed_api_tokens_are_refused(text: object) -> None:
    assert parse_api_token(text) is None  # type: ignore[arg-type]


def test_well_formed_api_token_parses() -> None:
    assert parse_api_token(f"cgw_{VALID_ID}_{VALID_SECRET}") == (VALID_ID, VALID_SECRET)


@given(st.text(max_size=120))
def test_parse_api_token_never_raises(text: str) -> None:
    result = parse_api_token(text)
    assert result is None or text == f"cgw_{result[0]}_{result[1]}"


# --- CSRF ----------------------------------------------------------------------------------


def test_csrf_token_is_random_and_urlsafe() -> None:
    tokens = {new_csrf_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", token) for token in tokens)


def test_csrf_matches_equal_tokens() -> None:
    token = new_csrf_token()
    assert csrf_matches(token, token) is True
    assert csrf_matches(token, str(token)) is True


@pytest.mark.parametrize(
    ("expected", "received"),
    [
        ("abc", "abd"),
        ("abc", "abcd"),
        ("abc", ""),
        ("", ""),
        (None, None),
        ("abc", None),
        (None, "abc"),
        ("", None),
        ("äbc", "abc"),  # non-ASCII must not make compare_digest raise
        ("abc", 123),
    ],
)
def test_csrf_mismatch_missing_or_empty_is_false(expected: object, received: object) -> None:
    assert csrf_matches(expected, received) is False  # type: ignore[arg-type]


def test_csrf_non_ascii_equal_tokens_match() -> None:
    assert csrf_matches("äbc", "äbc") is True


# --- next URL ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "next_url",
    [
        "/",
        "/index.html",
        "/api/v1/status?x=1&y=2",
        "/page#section",
        "/a/b/c/",
        "/.gateway/account",
        "/.gateway/../x",  # a path on this origin; the browser resolves it
        "/caf%C3%A9",
        "/search?q=a%20b",
        "/settings?mail=someone@example.org",  # "@" in the query is data
        "/a:b",
        "/a//b",  # empty segments in the middle are a path
    ],
)
def test_same_origin_paths_are_kept(next_url: str) -> None:
    assert is_safe_next(next_url) == next_url


@pytest.mark.parametrize(
    "next_url",
    [
        "",
        None,
        42,
        "https://evil.com",
        "http://evil.com/",
        "https:evil.com",
        "javascript:alert(1)",
        "data:text/html,hi",
        "evil.com",
        "relative/path",
        "//evil.com",
        "///evil.com",
        "////evil.com",
        "/\\evil.com",
        "\\\\evil.com",
        "\\/evil.com",
        "/a\\b",
        "/a?b=\\c",  # no backslash anywhere in the raw text
        "/%2F%2Fevil.com",
        "/%2f/evil.com",
        "/%5Cevil.com",
        "/%5cevil.com",
        "/%252F%252Fevil.com",  # double encoded
        "/%25252F%25252Fevil.com",  # triple encoded
        "/%2525252F%2525252Fevil.com",  # does not settle within the rounds: refused
        "%2F%2Fevil.com",
        "/\t/evil.com",  # browsers drop the tab: "//evil.com"
        "/\n/evil.com",
        "/\r\n/evil.com",
        "/%09/evil.com",
        "/ /evil.com",
        "/ok path",
        "/\x00",
        "/\x7f",
        "/%00",
        "/\u200b/evil.com",  # zero-width space
        "/%E2%80%8B/evil.com",
        "/\uff0f\uff0fevil.com",  # fullwidth solidus, not ASCII
        "/@evil.com",
        "/%40evil.com",
        "/user@evil.com/x",
        "/" + "a" * 2048,
    ],
)
def test_open_redirect_attempts_fall_back_to_root(next_url: object) -> None:
    assert is_safe_next(next_url) == "/"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("/.gateway/account", "/.gateway/account"),
        ("/.gateway/", "/.gateway/"),
        ("/.gateway", "/"),
        ("/index.html", "/"),
        ("/.gateway/../index.html", "/"),
        ("/.gateway/%2e%2e/index.html", "/"),
        ("/.gateway/./account", "/.gateway/./account"),
        ("/.gateway/a/../account", "/.gateway/a/../account"),
        ("/.gateway/a/..", "/.gateway/a/.."),
        ("/.gatewayx/", "/"),
    ],
)
def test_prefix_allowed_limits_the_target(next_url: str, expected: str) -> None:
    assert is_safe_next(next_url, prefix_allowed=("/.gateway/",)) == expected


def test_any_of_several_prefixes() -> None:
    prefixes = ("/.gateway/", "/app/")
    assert is_safe_next("/app/x", prefix_allowed=prefixes) == "/app/x"
    assert is_safe_next("/.gateway/x", prefix_allowed=prefixes) == "/.gateway/x"
    assert is_safe_next("/other", prefix_allowed=prefixes) == "/"


def _assert_same_origin(result: str) -> None:
    parts = urlsplit(result)
    assert parts.scheme == ""
    assert parts.netloc == ""
    assert result.startswith("/")
    assert not result.startswith("//")
    assert "\\" not in result


URL_PIECES = [*"/\\:@%.?#aZ09 \t\n-_~", "%2F", "%5C", "%2f", "%25", "//"]
URL_ALPHABET = st.sampled_from(URL_PIECES)


@settings(max_examples=500)
@given(st.text())
def test_property_any_text_gives_a_same_origin_path(text: str) -> None:
    _assert_same_origin(is_safe_next(text))


@settings(max_examples=1000)
@given(st.lists(URL_ALPHABET, max_size=20).map("".join))
def test_property_url_like_text_gives_a_same_origin_path(text: str) -> None:
    result = is_safe_next(text)
    _assert_same_origin(result)
    assert result in (text, "/")


@settings(max_examples=300)
@given(st.lists(URL_ALPHABET, max_size=20).map("".join))
def test_property_with_prefix_stays_under_the_prefix(text: str) -> None:
    result = is_safe_next(text, prefix_allowed=("/.gateway/",))
    _assert_same_origin(result)
    assert result == "/" or result.startswith("/.gateway/")
