"""Reading and removing the gateway's session cookie (gateway/policy/cookies.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.policy.cookies import session_cookie, without_cookie

NAME = "cemm_session"


def _fields(*values: bytes) -> tuple[tuple[bytes, bytes], ...]:
    return (b"Host", b"cemm.local"), *((b"Cookie", v) for v in values)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((b"cemm_session=abc",), "abc"),
        ((b"theme=dark; cemm_session=abc; lang=nl",), "abc"),
        ((b"theme=dark;cemm_session=abc",), "abc"),
        ((b" cemm_session = abc ",), "abc"),
        ((b"cemm_session=first; cemm_session=second",), "first"),
        ((b"theme=dark", b"cemm_session=abc"), "abc"),
        ((b"CEMM_SESSION=abc",), None),
        ((b"xcemm_session=abc",), None),
        ((b"__Host-cemm_session=abc",), None),
        ((b"cemm_session",), None),
        ((b"",), None),
        ((), None),
        ((b"cemm_session=\xff\xfe",), "\udcff\udcfe"),
    ],
)
def test_session_cookie(values: tuple[bytes, ...], expected: str | None) -> None:
    assert session_cookie(_fields(*values), NAME) == expected


def test_other_headers_are_not_cookies() -> None:
    assert session_cookie(((b"X-Cookie", b"cemm_session=abc"),), NAME) is None
    assert session_cookie(((b"COOKIE", b"cemm_session=abc"),), NAME) == "abc"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"cemm_session=abc", b""),
        (b"theme=dark; cemm_session=abc; lang=nl", b"theme=dark; lang=nl"),
        (b"cemm_session=abc; lang=nl", b"lang=nl"),
        (b"theme=dark; cemm_session=abc", b"theme=dark"),
        (b"cemm_session=a; theme=dark; cemm_session=b", b"theme=dark"),
        (b"theme=dark; lang=nl", b"theme=dark; lang=nl"),
        (b"CEMM_SESSION=abc; x=1", b"CEMM_SESSION=abc; x=1"),
        (b"__Host-cemm_session=abc", b"__Host-cemm_session=abc"),
        (b"cemm_session", b""),
    ],
)
def test_without_cookie(value: bytes, expected: bytes) -> None:
    assert without_cookie(value, NAME) == expected


piece = st.one_of(
    st.sampled_from([NAME, f" {NAME}", f"{NAME} ", f"\t{NAME}", "theme", NAME.upper(), ""]),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12),
).flatmap(
    lambda name: st.tuples(
        st.just(name),
        st.sampled_from(["=", "", "=="]),
        st.text(alphabet=st.characters(min_codepoint=0x09, max_codepoint=0xFF), max_size=12),
    )
)
header = st.lists(piece, max_size=6).map(
    lambda pieces: ";".join("".join(p) for p in pieces).encode("utf-8", "surrogateescape")
)


@given(value=header)
def test_nothing_the_reader_accepts_survives_removal(value: bytes) -> None:
    stripped = without_cookie(value, NAME)
    assert session_cookie(_fields(stripped), NAME) is None
    # And what was not the session cookie is still there, in order.
    others = [p for p in value.split(b";") if p.partition(b"=")[0].strip(b" \t") != NAME.encode()]
    if others != value.split(b";"):
        assert stripped == b";".join(others).strip(b" \t")
    else:
        assert stripped == value
