"""Password hashing and the password policy for local accounts.

Hashing
-------
Passwords are hashed with argon2id (the variant RFC 9106 recommends) through
``argon2.PasswordHasher`` with parameters pinned here rather than taken from the library's
defaults, so an upgrade of argon2-cffi cannot silently change the cost of a login:

* ``time_cost=3`` passes over ``memory_cost=32 MiB`` with ``parallelism=1``, 16-byte salt,
  32-byte tag: above OWASP's recommended minimum for argon2id (m=19 MiB t=2, or its
  equivalent m=46 MiB t=1) in both memory and passes. Parallelism 1 because the gateway
  runs on small boxes where a login must not take every core.
* Why not more memory: each verify holds its ``memory_cost`` while it runs, on top of the
  gateway's own memory. With 64 MiB (t=2, the earlier choice) a login storm - 200
  concurrent wrong logins against one account - took the gateway 89 MB above idle; with
  32 MiB, 57 MB (``bench/results.md``, the login storm, whose target is 64 MB: a small box
  must not swap because someone guesses passwords).
* Measured on the 2-core development box (Python 3.13, argon2-cffi 25): one verify took
  a median 80 ms (64 MiB t=2: 133 ms; 46 MiB t=1: 65 ms; 19 MiB t=2: 28 ms). The target is
  50-150 ms: slow enough to make offline guessing of a stolen database expensive, fast
  enough that a login on a phone feels instant.
* Verifies run one at a time, on the database thread (``gateway/portal/guesses.py``), and
  the brute-force gate delays and refuses guesses before any verify.

``needs_rehash`` reports hashes made with other parameters so the service layer can
re-hash on the next successful login when these parameters change.

Unknown users
-------------
``verify_unknown_user`` runs a real verify against a dummy hash so that a login for a
name that does not exist costs the same time as a wrong password for one that does; the
answer's timing must not tell an attacker which user names exist. The dummy hash is
computed on first use; call ``warm_up()`` at start-up so the first unknown-user login is
not slower than the rest.

Normalisation
-------------
Passwords are normalised to Unicode NFKC before hashing, checking and verifying (NIST SP
800-63B section 5.1.1.2), so the same password typed on a phone and on a desktop keyboard,
which may produce differently composed characters, matches.

Policy
------
NIST SP 800-63B style: length over composition rules. At least 10 and at most 1024
characters (after normalisation), not the user name and not containing it (ignoring
case; containment only checked for names of 3 characters or more, so a user called "al"
may still use "totally"), and not one character repeated. No "must contain a digit"
rules: they make passwords harder to remember without making them harder to guess.
"""

from __future__ import annotations

import secrets
import string
import threading
import unicodedata
from collections.abc import Iterable

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.i18n import N_, Message

__all__ = [
    "ARGON2_MEMORY_COST_KIB",
    "ARGON2_PARALLELISM",
    "ARGON2_TIME_COST",
    "GENERATED_PASSWORD_ALPHABET",
    "GENERATED_PASSWORD_LENGTH",
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "PasswordPolicyError",
    "check_password_policy",
    "generate_password",
    "hash_password",
    "needs_rehash",
    "verify_password",
    "verify_unknown_user",
    "warm_up",
]

ARGON2_TIME_COST = 3
ARGON2_MEMORY_COST_KIB = 32 * 1024  # 32 MiB
ARGON2_PARALLELISM = 1

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
# The user name is only searched for inside the password when it is at least this long;
# shorter names occur by chance in ordinary words.
_MIN_NAME_LENGTH_FOR_CONTAINS = 3

# Without characters that look alike (0/O/o, 1/l/I): the first admin's password is printed
# once and typed in by a person.
GENERATED_PASSWORD_ALPHABET = "".join(
    char for char in string.ascii_letters + string.digits if char not in "0Oo1lI"
)
GENERATED_PASSWORD_LENGTH = 20  # 20 * log2(56) = 116 bits

_HASHER = PasswordHasher(
    time_cost=ARGON2_TIME_COST,
    memory_cost=ARGON2_MEMORY_COST_KIB,
    parallelism=ARGON2_PARALLELISM,
    hash_len=32,
    salt_len=16,
    type=Type.ID,
)

_dummy_hash: str | None = None
_dummy_lock = threading.Lock()


class PasswordPolicyError(ValueError):
    """The password does not meet the policy; the message says what to change (``text``:
    the same, to show in the reader's language)."""

    def __init__(self, template: str, /, **params: object) -> None:
        self.text = Message(template, **params)
        super().__init__(str(self.text))


def _normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    """Hash a password with argon2id; the result is an encoded ``$argon2id$...`` string."""
    return _HASHER.hash(_normalise(password))


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``.

    Never raises for a bad hash: a malformed, truncated or foreign hash is simply no match
    (the account cannot log in with a password until it is set again).
    """
    if not isinstance(password_hash, str) or not isinstance(password, str):
        return False
    try:
        return _HASHER.verify(password_hash, _normalise(password))
    except (VerificationError, InvalidHashError, ValueError):
        # VerifyMismatchError is a VerificationError; InvalidHashError covers malformed
        # hashes; ValueError covers non-ASCII text argon2-cffi cannot even encode.
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than the current ones.

    A malformed hash needs a rehash too (True); it can never verify, so the service layer
    will not get to rehash it, but it will not be kept by mistake either.
    """
    if not isinstance(password_hash, str):
        return True
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


def _get_dummy_hash() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        with _dummy_lock:
            if _dummy_hash is None:
                _dummy_hash = _HASHER.hash(secrets.token_urlsafe(32))
    return _dummy_hash


def warm_up(stored: Iterable[str] = ()) -> None:
    """Compute the dummy hash now, so the first unknown-user login is not slower.

    ``stored``: the accounts' password hashes. A hash made with costlier parameters than
    today's (an account whose owner has not logged in since the parameters changed) takes
    longer to verify; the dummy is made with the costliest of them, so that a wrong password
    for such an account cannot be told from a name that does not exist.
    """
    global _dummy_hash
    costliest = _HASHER
    for encoded in stored:
        try:
            parameters = extract_parameters(encoded)
        except InvalidHashError:
            continue
        if parameters.memory_cost * parameters.time_cost > (
            costliest.memory_cost * costliest.time_cost
        ):
            costliest = PasswordHasher.from_parameters(parameters)
    # Under the lock: a login meanwhile waits for this dummy rather than make a cheaper one.
    with _dummy_lock:
        _dummy_hash = costliest.hash(secrets.token_urlsafe(32))


def verify_unknown_user(password: str) -> bool:
    """Spend the time of a real verify and return False (login for a non-existent user)."""
    # The dummy hash is of a random secret nobody knows, so this cannot match; the verify
    # still runs in full to keep the work identical to a wrong password for a real user.
    verify_password(_get_dummy_hash(), password)
    return False


def check_password_policy(password: str, *, username: str) -> None:
    """Raise ``PasswordPolicyError`` if ``password`` may not be used by ``username``."""
    normalised = _normalise(password)
    length = len(normalised)
    if length < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(
            N_(
                "password is too short: {length} characters, at least {minimum} are needed; "
                "a few unrelated words make a long password that is easy to remember"
            ),
            length=length,
            minimum=MIN_PASSWORD_LENGTH,
        )
    if length > MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError(
            N_("password is too long: {length} characters, at most {maximum} are allowed"),
            length=length,
            maximum=MAX_PASSWORD_LENGTH,
        )
    if len(set(normalised)) == 1:
        raise PasswordPolicyError(
            N_("password is one character repeated; choose a password that is hard to guess")
        )
    folded_password = normalised.casefold()
    folded_name = _normalise(username).casefold()
    if folded_name and folded_password == folded_name:
        raise PasswordPolicyError(N_("password must not be the user name; choose another one"))
    if len(folded_name) >= _MIN_NAME_LENGTH_FOR_CONTAINS and folded_name in folded_password:
        raise PasswordPolicyError(
            N_("password must not contain the user name; choose one without it")
        )


def generate_password(*, username: str) -> str:
    """A random password (about 116 bits) for ``username``, easy to read and type.

    It always passes :func:`check_password_policy` for that user: a draw that happens to
    contain the user name (about 1 in 2,400 for a three-letter name) is drawn again.
    """
    while True:
        password = "".join(
            secrets.choice(GENERATED_PASSWORD_ALPHABET) for _ in range(GENERATED_PASSWORD_LENGTH)
        )
        try:
            check_password_policy(password, username=username)
        except PasswordPolicyError:
            continue
        return password
