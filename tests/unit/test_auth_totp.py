"""Tests of the TOTP second factor and recovery codes (gateway/auth/totp.py)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest

from gateway.auth.totp import (
    RECOVERY_CODE_ALPHABET,
    generate_recovery_codes,
    hash_recovery_code,
    match_recovery_code,
    new_secret,
    normalise_recovery_code,
    provisioning_uri,
    verify_totp,
)
from gateway.qr import qr_svg, qr_text
from tests.support.ci import cannot_run

# RFC 6238 appendix B: the SHA-1 seed "12345678901234567890"; 6-digit codes are the last six
# digits of the 8-digit values in the RFC's table.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [
    (59, "287082"),
    (1111111109, "081804"),
    (1111111111, "050471"),
    (1234567890, "005924"),
    (2000000000, "279037"),
]

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = 1_700_000_000.0
STEP = int(NOW // 30)


def code_at(step: int, secret: str = SECRET) -> str:
    return pyotp.TOTP(secret).at(step * 30)


# --- secrets and URIs ----------------------------------------------------------------------


def test_new_secret_is_160_bit_base32() -> None:
    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert re.fullmatch(r"[A-Z2-7]{32}", secret)
        assert len(base64.b32decode(secret)) == 20


def test_provisioning_uri_names_issuer_account_and_secret() -> None:
    uri = provisioning_uri(SECRET, account="alice")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/cemm-gateway:alice"
    query = parse_qs(parts.query)
    assert query["secret"] == [SECRET]
    assert query["issuer"] == ["cemm-gateway"]


def test_provisioning_uri_quotes_awkward_names() -> None:
    uri = provisioning_uri(SECRET, account="bob:the builder", issuer="Home Gateway")
    assert " " not in uri
    assert unquote(urlsplit(uri).path) == "/Home Gateway:bob:the builder"


# --- verification --------------------------------------------------------------------------


@pytest.mark.parametrize(("timestamp", "code"), RFC_VECTORS)
def test_rfc_6238_vectors(timestamp: int, code: str) -> None:
    assert verify_totp(RFC_SECRET, code, last_used_step=None, now=timestamp, window=0) == (
        timestamp // 30
    )


def test_current_code_is_accepted_and_returns_its_step() -> None:
    assert verify_totp(SECRET, code_at(STEP), last_used_step=None, now=NOW) == STEP


@pytest.mark.parametrize("offset", [-1, 1])
def test_neighbouring_step_is_accepted_with_window_1(offset: int) -> None:
    step = STEP + offset
    assert verify_totp(SECRET, code_at(step), last_used_step=None, now=NOW) == step


@pytest.mark.parametrize("offset", [-1, 1])
def test_neighbouring_step_is_refused_with_window_0(offset: int) -> None:
    assert (
        verify_totp(SECRET, code_at(STEP + offset), last_used_step=None, now=NOW, window=0) is None
    )


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_codes_outside_the_window_are_refused(offset: int) -> None:
    assert verify_totp(SECRET, code_at(STEP + offset), last_used_step=None, now=NOW) is None


def test_wider_window_accepts_further_steps() -> None:
    step = STEP - 2
    assert verify_totp(SECRET, code_at(step), last_used_step=None, now=NOW, window=2) == step


def test_replay_of_the_same_code_is_refused() -> None:
    code = code_at(STEP)
    used = verify_totp(SECRET, code, last_used_step=None, now=NOW)
    assert used == STEP
    assert verify_totp(SECRET, code, last_used_step=used, now=NOW) is None
    # Still refused later in its window.
    assert verify_totp(SECRET, code, last_used_step=used, now=NOW + 30) is None


def test_older_code_than_the_last_used_is_refused() -> None:
    # The user logged in with the next step's code; the current one is now too old.
    assert verify_totp(SECRET, code_at(STEP), last_used_step=STEP + 1, now=NOW) is None
    assert verify_totp(SECRET, code_at(STEP - 1), last_used_step=STEP, now=NOW) is None


def test_newer_code_after_a_used_one_is_accepted() -> None:
    assert verify_totp(SECRET, code_at(STEP + 1), last_used_step=STEP, now=NOW) == STEP + 1


def test_spaces_in_the_code_are_ignored() -> None:
    code = code_at(STEP)
    spaced = f" {code[:3]} {code[3:]}\t"
    assert verify_totp(SECRET, spaced, last_used_step=None, now=NOW) == STEP


def test_code_of_another_secret_is_refused() -> None:
    foreign = code_at(STEP, RFC_SECRET)
    assert foreign not in {code_at(STEP + offset) for offset in (-1, 0, 1)}  # precondition
    assert verify_totp(SECRET, foreign, last_used_step=None, now=NOW) is None


def _wrong_code() -> str:
    valid = {code_at(STEP + offset) for offset in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "12345",
        "1234567",
        "abcdef",
        "12345a",
        "-12345",
        "+12345",
        "١٢٣٤٥٦",  # Arabic-Indic digits: str.isdigit() would say yes
        "12-34-56",
        "1" * 10_000,
        None,
        123456,
    ],
)
def test_garbage_codes_are_refused(garbage: object) -> None:
    assert verify_totp(SECRET, garbage, last_used_step=None, now=NOW) is None  # type: ignore[arg-type]


def test_wrong_code_is_refused() -> None:
    assert verify_totp(SECRET, _wrong_code(), last_used_step=None, now=NOW) is None


@pytest.mark.parametrize("secret", ["", "not base32!", "ABC1"])
def test_broken_secret_says_how_to_recover(secret: str) -> None:
    with pytest.raises(ValueError, match="reset-2fa"):
        verify_totp(secret, "123456", last_used_step=None, now=NOW)


def test_negative_window_is_an_error() -> None:
    with pytest.raises(ValueError, match="window"):
        verify_totp(SECRET, "123456", last_used_step=None, now=NOW, window=-1)


# --- QR codes ------------------------------------------------------------------------------


def test_qr_svg_is_inline_svg_with_explicit_colours() -> None:
    svg = qr_svg(provisioning_uri(SECRET, account="alice"))
    assert svg.startswith("<svg")
    assert "<?xml" not in svg
    assert svg.rstrip().endswith("</svg>")
    assert "#000000" in svg or "#000" in svg
    assert "#fff" in svg


def test_qr_text_is_a_block_drawing() -> None:
    text = qr_text(provisioning_uri(SECRET, account="alice"))
    lines = text.splitlines()
    assert len(lines) > 10
    assert len({len(line) for line in lines}) == 1  # a rectangle
    assert set(text) <= set("█▀▄ \n")


def test_qr_svg_decodes_to_exactly_the_uri(tmp_path: Path) -> None:
    """The SVG as a browser draws it decodes to the provisioning URI (zbarimg reads PNG)."""
    from tests.support.browser import chromium

    uri = provisioning_uri(SECRET, account="alice@example.org")
    png = tmp_path / "qr.png"
    with chromium() as browser:
        page = browser.new_page()
        page.set_content(f"<body style='margin:40px;background:#fff'>{qr_svg(uri)}</body>")
        page.locator("svg").screenshot(path=str(png))
    if shutil.which("zbarimg") is None:
        cannot_run("zbarimg (zbar-tools) not installed")
    result = subprocess.run(
        ["zbarimg", "--quiet", "--raw", str(png)], capture_output=True, text=True, check=True
    )
    assert result.stdout.rstrip("\n") == uri


# --- recovery codes ------------------------------------------------------------------------


def test_recovery_codes_are_formatted_unique_and_60_bits() -> None:
    codes = generate_recovery_codes()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    alphabet = re.escape(RECOVERY_CODE_ALPHABET)
    for code in codes:
        assert re.fullmatch(rf"[{alphabet}]{{4}}-[{alphabet}]{{4}}-[{alphabet}]{{4}}", code)
    assert len(RECOVERY_CODE_ALPHABET) == 32  # 12 characters * 5 bits = 60 bits
    assert not set("ilou") & set(RECOVERY_CODE_ALPHABET)


def test_recovery_code_count_is_configurable() -> None:
    assert len(generate_recovery_codes(3)) == 3
    with pytest.raises(ValueError, match="at least 1"):
        generate_recovery_codes(0)


@pytest.mark.parametrize(
    ("typed", "normalised"),
    [
        ("ab12-cd34-ef56", "ab12cd34ef56"),
        ("AB12 CD34 EF56", "ab12cd34ef56"),
        (" ab12cd34ef56\n", "ab12cd34ef56"),
        ("ab12--cd34 - ef56", "ab12cd34ef56"),
        ("O0I1-L1ab-cdef", "0011" + "11ab" + "cdef"),  # letters typed for digits
    ],
)
def test_normalise_recovery_code(typed: str, normalised: str) -> None:
    assert normalise_recovery_code(typed) == normalised


def test_recovery_code_hash_is_sha256_of_normalised_code() -> None:
    assert hash_recovery_code("AB12-CD34-EF56") == hash_recovery_code("ab12cd34ef56")
    assert re.fullmatch(r"[0-9a-f]{64}", hash_recovery_code("ab12cd34ef56"))


def test_recovery_code_roundtrip() -> None:
    codes = generate_recovery_codes()
    hashes = [hash_recovery_code(code) for code in codes]
    for index, code in enumerate(codes):
        assert match_recovery_code(code, hashes) == index
        assert match_recovery_code(code.upper().replace("-", " "), hashes) == index


def test_used_recovery_code_marked_none_no_longer_matches() -> None:
    codes = generate_recovery_codes(3)
    hashes: list[str | None] = [hash_recovery_code(code) for code in codes]
    hashes[1] = None
    assert match_recovery_code(codes[1], hashes) is None
    assert match_recovery_code(codes[2], hashes) == 2


@pytest.mark.parametrize(
    "typed",
    ["", "abcd-efgh-jkm", "abcd-efgh-jkmnp", "abcd-efgh-jku!", "ab12-cd34-ef5ü", None],
)
def test_malformed_recovery_codes_do_not_match(typed: object) -> None:
    hashes = [hash_recovery_code(code) for code in generate_recovery_codes()]
    assert match_recovery_code(typed, hashes) is None  # type: ignore[arg-type]


def test_unknown_recovery_code_does_not_match() -> None:
    hashes = [hash_recovery_code(code) for code in generate_recovery_codes()]
    other = generate_recovery_codes(1)[0]
    assert match_recovery_code(other, hashes) is None
    assert match_recovery_code(other, []) is None


def test_corrupt_stored_hash_does_not_raise() -> None:
    code = generate_recovery_codes(1)[0]
    assert match_recovery_code(code, ["", "ünïcode", hash_recovery_code(code)]) == 2
