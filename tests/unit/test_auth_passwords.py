"""Tests of password hashing and policy (gateway/auth/passwords.py), a rule per test."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from argon2 import PasswordHasher, Type

from gateway.auth import passwords
from gateway.auth.passwords import (
    GENERATED_PASSWORD_ALPHABET,
    GENERATED_PASSWORD_LENGTH,
    PasswordPolicyError,
    check_password_policy,
    generate_password,
    hash_password,
    needs_rehash,
    verify_password,
    verify_unknown_user,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def stored_hash() -> str:
    return hash_password(PASSWORD)


# --- hashing -------------------------------------------------------------------------------


def test_hash_is_argon2id_with_the_pinned_parameters(stored_hash: str) -> None:
    assert stored_hash.startswith("$argon2id$v=19$m=32768,t=3,p=1$")


def test_a_hash_of_the_earlier_parameters_verifies_and_is_made_again() -> None:
    from argon2 import PasswordHasher, Type

    from gateway.auth.passwords import needs_rehash

    earlier = PasswordHasher(
        time_cost=2, memory_cost=64 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
    ).hash(PASSWORD)
    assert verify_password(earlier, PASSWORD) is True
    assert needs_rehash(earlier) is True


def test_hash_is_salted() -> None:
    assert hash_password(PASSWORD) != hash_password(PASSWORD)


def test_right_password_verifies(stored_hash: str) -> None:
    assert verify_password(stored_hash, PASSWORD) is True


@pytest.mark.parametrize(
    "attempt", ["", "correct horse battery stapl", "Correct horse battery staple", PASSWORD + " "]
)
def test_wrong_password_does_not_verify(stored_hash: str, attempt: str) -> None:
    assert verify_password(stored_hash, attempt) is False


def test_unicode_forms_of_the_same_password_match() -> None:
    composed = "caf\u00e9 au lait, bitte"  # é as one code point
    decomposed = "cafe\u0301 au lait, bitte"  # e + combining acute accent
    assert verify_password(hash_password(composed), decomposed) is True


@pytest.mark.parametrize(
    "bad_hash",
    [
        "",
        "not a hash",
        "$argon2id$",
        "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ",  # no tag
        "$argon2id$v=19$m=65536,t=2,p=1$!!!$!!!",
        "$2b$12$KIXQJvQ8Hq5lO5f9kq3bUeZQ9b6fQ0fT3bJ8m1a0Q6mE4xVYqkG5W",  # bcrypt
        "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",  # impossible params
        "$argon2id$v=19$m=65536,t=2,p=1$c\u00e4lt$t\u00e4g",  # not ASCII
    ],
)
def test_malformed_hash_is_no_match_and_needs_rehash(bad_hash: str) -> None:
    assert verify_password(bad_hash, PASSWORD) is False
    assert needs_rehash(bad_hash) is True


def test_non_string_hash_is_no_match() -> None:
    assert verify_password(None, PASSWORD) is False  # type: ignore[arg-type]
    assert needs_rehash(None) is True  # type: ignore[arg-type]


def test_current_hash_needs_no_rehash(stored_hash: str) -> None:
    assert needs_rehash(stored_hash) is False


def test_hash_with_other_parameters_still_verifies_but_needs_rehash() -> None:
    weaker = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID)
    old_hash = weaker.hash(PASSWORD)
    assert verify_password(old_hash, PASSWORD) is True
    assert needs_rehash(old_hash) is True


# --- unknown users -------------------------------------------------------------------------


def test_unknown_user_never_verifies() -> None:
    assert verify_unknown_user(PASSWORD) is False
    assert verify_unknown_user("") is False


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def test_unknown_user_takes_as_long_as_a_wrong_password(stored_hash: str) -> None:
    passwords.warm_up()
    real, unknown = [], []
    for _ in range(5):  # interleaved, so load from other processes hits both alike
        real.append(_timed(lambda: verify_password(stored_hash, "wrong password 123")))
        unknown.append(_timed(lambda: verify_unknown_user("wrong password 123")))
    real_median, unknown_median = statistics.median(real), statistics.median(unknown)
    # Loose bound: the point is "a full argon2 verify" versus "an instant answer".
    assert real_median / 2 < unknown_median < real_median * 2, (
        f"real verify {real_median:.3f}s, unknown user {unknown_median:.3f}s"
    )


# --- policy --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "username"),
    [
        ("ten chars!", "alice"),
        ("a" * 9 + "b", "alice"),  # not all one character
        ("x" * 1023 + "y", "alice"),  # 1024 characters
        ("totally fine", "al"),  # short names are not searched for inside the password
        ("password for bob", ""),  # no name: nothing to compare with
        ("überlänge straße", "alice"),
    ],
)
def test_policy_accepts(password: str, username: str) -> None:
    check_password_policy(password, username=username)


@pytest.mark.parametrize(
    ("password", "username", "message"),
    [
        ("", "alice", "too short: 0 characters, at least 10"),
        ("short", "alice", "too short: 5 characters"),
        ("nine char", "alice", "too short: 9 characters"),
        ("x" * 1025, "alice", "too long: 1025 characters, at most 1024"),
        ("aaaaaaaaaaaa", "alice", "one character repeated"),
        ("            ", "alice", "one character repeated"),
        ("administrator", "administrator", "must not be the user name"),
        ("AdministratoR", "administrator", "must not be the user name"),
        ("alice-password", "alice", "must not contain the user name"),
        ("my name is ALICE!", "Alice", "must not contain the user name"),
    ],
)
def test_policy_refuses_with_a_clear_message(password: str, username: str, message: str) -> None:
    with pytest.raises(PasswordPolicyError, match=message):
        check_password_policy(password, username=username)


def test_policy_error_is_a_value_error() -> None:
    assert issubclass(PasswordPolicyError, ValueError)


def test_generated_password_is_long_readable_and_allowed() -> None:
    generated = [generate_password(username="admin") for _ in range(50)]
    assert len(set(generated)) == 50
    for password in generated:
        assert len(password) == GENERATED_PASSWORD_LENGTH
        assert set(password) <= set(GENERATED_PASSWORD_ALPHABET)
        check_password_policy(password, username="admin")
    assert not set("0O1lI") & set(GENERATED_PASSWORD_ALPHABET)


def test_a_generated_password_never_contains_the_user_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The first draw spells the user name; the policy would refuse it, so it is drawn again.
    draws = iter("kim" + "x" * (GENERATED_PASSWORD_LENGTH - 3) + "abcdefghij" * 2)
    monkeypatch.setattr("gateway.auth.passwords.secrets.choice", lambda _alphabet: next(draws))
    password = generate_password(username="Kim")
    assert password == "abcdefghij" * 2
    check_password_policy(password, username="Kim")


# --- dependencies (for all four pure modules: passwords, totp, tokens, bruteforce) ---------


PURE_MODULES = {
    "gateway.auth.bruteforce",
    "gateway.auth.passwords",
    "gateway.auth.tokens",
    "gateway.auth.totp",
}


def test_pure_auth_modules_import_no_storage_web_or_proxy_code() -> None:
    code = f"import sys, {', '.join(sorted(PURE_MODULES))}; print(*sorted(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = set(result.stdout.split())
    forbidden = {"sqlite3", "mitmproxy", "fastapi", "starlette"}
    assert {name for name in loaded if name.split(".")[0] in forbidden} == set()
    ours = {name for name in loaded if name.split(".")[0] == "gateway"}
    # gateway.i18n: the messages' catalogs (gettext and Babel; no storage, web or proxy).
    assert ours <= {"gateway", "gateway.auth", "gateway.clock", "gateway.i18n", *PURE_MODULES}


def test_the_unknown_user_dummy_costs_as_much_as_the_costliest_stored_hash() -> None:
    from argon2 import PasswordHasher, Type, extract_parameters

    from gateway.auth import passwords

    earlier = PasswordHasher(
        time_cost=2, memory_cost=64 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
    ).hash(PASSWORD)
    try:
        passwords.warm_up([hash_password(PASSWORD), earlier, "not a hash"])
        dummy = passwords._get_dummy_hash()
        assert (extract_parameters(dummy).memory_cost, extract_parameters(dummy).time_cost) == (
            64 * 1024,
            2,
        )
        passwords.warm_up([hash_password(PASSWORD)])
        dummy = passwords._get_dummy_hash()
        assert extract_parameters(dummy).memory_cost == passwords.ARGON2_MEMORY_COST_KIB
    finally:
        passwords.warm_up()
