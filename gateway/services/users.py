"""Local accounts: the one place that creates, changes and checks them.

Rules that live here, for the CLI and the web app alike:
- names are short and plain (letters, digits, ``.``, ``_``, ``-``, ``@``), unique ignoring case;
- passwords follow :func:`gateway.auth.passwords.check_password_policy` and are stored as
  argon2id hashes;
- the last enabled admin can be neither disabled, removed nor demoted (no lock-out), and
  nobody can disable, demote or remove their own account (``actor`` is the user's name
  when a person does it in the admin app): another admin has to, so a slip of the finger
  cannot lock anyone out of the pages they are using;
- disabling an account, changing its password or removing it ends its sessions (the
  running gateway closes their WebSockets within a second);
- every change writes its audit entry in the same transaction.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field

from gateway.auth import passwords, tokens, totp
from gateway.clock import SYSTEM_CLOCK, Clock, ManualClock
from gateway.i18n import N_
from gateway.services import audit, held
from gateway.services.errors import Conflict, Invalid, NotFound, ServiceError
from gateway.store.db import DiskFullError, transaction

Role = Literal["admin", "user", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "user", "viewer")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class UserError(ServiceError):
    """A change to an account that cannot be made; the message says why."""


class UserInvalid(UserError, Invalid):
    """A name, role, password or code that is not acceptable as given."""


class UserNotFound(UserError, NotFound):
    """No account with that name (or no such session of one)."""


class LastAdminError(UserError, Conflict):
    """The change would leave no enabled admin (nobody could manage the gateway)."""

    code = "last_admin"


class UserExistsError(UserError, Conflict):
    """There is already an account with that name (names are unique ignoring case)."""

    code = "exists"


class OwnAccountError(UserError, Conflict):
    """Someone tried to disable, demote or remove their own account."""

    code = "own_account"


def _refuse_own_account(user: User, actor: str, refusal: str) -> None:
    """Raise ``OwnAccountError`` with ``refusal`` (a catalog message) if ``actor`` is the
    account's own user."""
    # CLI and system actors ("cli:root", "system:...") contain ':', which names cannot.
    if actor.casefold() == user.name.casefold():
        raise OwnAccountError(refusal)


@dataclass(frozen=True)
class User:
    """An account as every edge shows it (the admin API answers it as ``UserOut``); the
    password hash and the TOTP secret are no part of it, only whether there are any."""

    # The row id stays inside the gateway: accounts are named by their name.
    id: Annotated[int, Field(exclude=True)]
    name: str
    role: Role
    disabled: bool
    email: str | None
    oidc_managed: bool
    totp_enabled: bool
    has_password: bool
    created_at: float


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        disabled=bool(row["disabled"]),
        email=row["email"],
        oidc_managed=row["oidc_issuer"] is not None,
        totp_enabled=bool(row["totp_enabled"]),
        has_password=row["password_hash"] is not None,
        created_at=row["created_at"],
    )


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UserInvalid(
            N_(
                "user name '{name}' is not allowed; use 1-64 letters, digits, '.', '_', '-' "
                "or '@', starting with a letter or digit, for example anna"
            ),
            field="name",
            name=name,
        )
    return name


def check_role(role: str) -> Role:
    if role == "admin":
        return "admin"
    if role == "user":
        return "user"
    if role == "viewer":
        return "viewer"
    raise UserInvalid(
        N_("role '{role}' is unknown; choose admin, user or viewer"), field="role", role=role
    )


def get_user(conn: sqlite3.Connection, name: str) -> User | None:
    row = conn.execute("SELECT * FROM user WHERE name = ?", (name,)).fetchone()
    return _user(row) if row else None


def get_user_by_id(conn: sqlite3.Connection, user_id: int) -> User | None:
    row = conn.execute("SELECT * FROM user WHERE id = ?", (user_id,)).fetchone()
    return _user(row) if row else None


NO_SUCH_USER = N_("there is no user '{name}'; 'cemm-gateway user list' shows them")


def require_user(conn: sqlite3.Connection, name: str) -> User:
    user = get_user(conn, name)
    if user is None:
        raise UserNotFound(NO_SUCH_USER, name=name)
    return user


def get_user_by_email(conn: sqlite3.Connection, email: str) -> User | None:
    row = conn.execute(
        "SELECT * FROM user WHERE email = ? ORDER BY id LIMIT 1", (email,)
    ).fetchone()
    return _user(row) if row else None


def get_user_by_oidc(conn: sqlite3.Connection, issuer: str, subject: str) -> User | None:
    row = conn.execute(
        "SELECT * FROM user WHERE oidc_issuer = ? AND oidc_subject = ?", (issuer, subject)
    ).fetchone()
    return _user(row) if row else None


def list_users(conn: sqlite3.Connection) -> list[User]:
    return [_user(row) for row in conn.execute("SELECT * FROM user ORDER BY name")]


_LAST_ADMIN_ENABLE = N_("'{name}' is the last enabled admin; add or enable another admin first")


def _refuse_last_admin(conn: sqlite3.Connection, user: User, refusal: str) -> None:
    """Raise ``LastAdminError`` if ``user`` is the only enabled admin: taking that away
    would leave nobody who can use the admin pages. ``refusal`` (a catalog message with
    ``{name}``) says so and what to do first."""
    if user.role != "admin" or user.disabled:
        return
    enabled_admins = conn.execute(
        "SELECT count(*) FROM user WHERE role = 'admin' AND disabled = 0"
    ).fetchone()[0]
    if enabled_admins <= 1:
        raise LastAdminError(refusal, name=user.name)


def _end_sessions(
    conn: sqlite3.Connection, user_id: int, reason: str, now: float, keep: str | None = None
) -> int:
    return conn.execute(
        "UPDATE session SET revoked_at = ?, revoked_reason = ?"
        " WHERE user_id = ? AND revoked_at IS NULL AND id IS NOT ?",
        (now, reason, user_id, keep),
    ).rowcount


def add_user(
    conn: sqlite3.Connection,
    name: str,
    *,
    role: str,
    password: str | None,
    actor: str,
    email: str | None = None,
    oidc: tuple[str, str] | None = None,
    client_address: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> User:
    """Create an account. Local accounts need a password; OIDC-managed ones have none."""
    check_name(name)
    check_role(role)
    if password is None and oidc is None:
        raise UserInvalid(N_("a local user needs a password"), field="password")
    password_hash = None
    if password is not None:
        try:
            passwords.check_password_policy(password, username=name)
        except passwords.PasswordPolicyError as error:
            raise UserInvalid(error.text, field="password") from None
        password_hash = passwords.hash_password(password)
    now = clock.now()
    with transaction(conn):
        if get_user(conn, name) is not None:
            raise UserExistsError(N_("there is already a user '{name}'"), name=name)
        cursor = conn.execute(
            "INSERT INTO user (name, role, password_hash, email, oidc_issuer, oidc_subject,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (name, role, password_hash, email, *(oidc or (None, None)), now, now),
        )
        audit.record(
            conn,
            actor,
            "user.add",
            client_address=client_address,
            clock=clock,
            user=name,
            role=role,
            oidc=oidc is not None,
        )
    user = get_user_by_id(conn, int(cursor.lastrowid or 0))
    assert user is not None
    return user


def set_password(
    conn: sqlite3.Connection,
    name: str,
    password: str,
    *,
    actor: str,
    keep_session: str | None = None,
    keep_device: str | None = None,
    client_address: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Set a new password, end every session but ``keep_session`` and forget every known
    device (:mod:`gateway.services.devices`) but the one with the token ``keep_device``:
    a device that logged in with the old password is a stranger again."""
    user = require_user(conn, name)
    if user.oidc_managed:
        raise UserInvalid(
            N_("'{name}' signs in through OIDC; its password is the provider's"),
            field="password",
            name=name,
        )
    try:
        passwords.check_password_policy(password, username=user.name)
    except passwords.PasswordPolicyError as error:
        raise UserInvalid(error.text, field="password") from None
    password_hash = passwords.hash_password(password)
    now = clock.now()
    with transaction(conn):
        conn.execute(
            "UPDATE user SET password_hash = ?, updated_at = ? WHERE id = ?",
            (password_hash, now, user.id),
        )
        ended = _end_sessions(conn, user.id, "password changed", now, keep_session)
        conn.execute(
            "DELETE FROM known_device WHERE user_id = ? AND token_hash IS NOT ?",
            (user.id, tokens.token_hash(keep_device) if keep_device else None),
        )
        audit.record(
            conn,
            actor,
            "user.password",
            client_address=client_address,
            clock=clock,
            user=user.name,
            sessions_ended=ended,
        )


def set_disabled(
    conn: sqlite3.Connection,
    name: str,
    disabled: bool,
    *,
    actor: str,
    client_address: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> User:
    """Disable or enable an account. Disabling is held on a full disk
    (:mod:`gateway.services.held`): in force at once, saved when there is room."""
    user = require_user(conn, name)
    if disabled:
        _refuse_own_account(
            user, actor, N_("you cannot disable your own account; another admin can")
        )
    try:
        return _set_disabled(conn, user, disabled, actor, client_address, clock)
    except DiskFullError:
        if not (disabled and held.enabled()):
            raise
        _refuse_last_admin(conn, user, _LAST_ADMIN_ENABLE)
        at = ManualClock(clock.now())
        held.hold(
            held.Cutoff(
                "user",
                str(user.id),
                f"account {user.name} disabled by {actor}",
                lambda c: _set_disabled(
                    c, require_user(c, user.name), True, actor, client_address, at
                ),
            )
        )
        return dataclasses.replace(user, disabled=True)


def _set_disabled(
    conn: sqlite3.Connection,
    user: User,
    disabled: bool,
    actor: str,
    client_address: str | None,
    clock: Clock,
) -> User:
    name = user.name
    now = clock.now()
    with transaction(conn):
        if disabled:
            _refuse_last_admin(conn, user, _LAST_ADMIN_ENABLE)
        conn.execute(
            "UPDATE user SET disabled = ?, updated_at = ? WHERE id = ?",
            (int(disabled), now, user.id),
        )
        ended = _end_sessions(conn, user.id, "account disabled", now) if disabled else 0
        audit.record(
            conn,
            actor,
            "user.disable" if disabled else "user.enable",
            client_address=client_address,
            clock=clock,
            user=user.name,
            sessions_ended=ended,
        )
    return require_user(conn, name)


def set_role(
    conn: sqlite3.Connection,
    name: str,
    role: str,
    *,
    actor: str,
    client_address: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> User:
    """Change the account's role. Made an admin while it has no second factor, the
    account's sessions end: they were started with a password alone, which
    ``[auth] require_second_factor = "admins"`` does not let reach anything as an admin
    (:mod:`gateway.policy.second_factor`); the next login sets one up where that applies."""
    user = require_user(conn, name)
    check_role(role)
    if user.role == "admin" and role != "admin":
        _refuse_own_account(
            user, actor, N_("you cannot demote your own account; another admin can")
        )
    with transaction(conn):
        if role != "admin":
            _refuse_last_admin(
                conn,
                user,
                N_("'{name}' is the last enabled admin; make another user admin first"),
            )
        now = clock.now()
        conn.execute("UPDATE user SET role = ?, updated_at = ? WHERE id = ?", (role, now, user.id))
        promoted = role == "admin" and user.role != "admin"
        ended = (
            _end_sessions(conn, user.id, "made admin without a second factor", now)
            if promoted and not _has_second_factor(conn, user)
            else 0
        )
        detail: dict[str, Any] = {"user": user.name, "role": role}
        if ended:
            detail["sessions_ended"] = ended
        audit.record(conn, actor, "user.role", client_address=client_address, clock=clock, **detail)
    return require_user(conn, name)


def _has_second_factor(conn: sqlite3.Connection, user: User) -> bool:
    """An authenticator app or a passkey (the passkey table is the passkeys service's)."""
    if user.totp_enabled:
        return True
    found = conn.execute("SELECT 1 FROM passkey WHERE user_id = ?", (user.id,)).fetchone()
    return found is not None


def change_user(
    conn: sqlite3.Connection,
    name: str,
    *,
    role: str | None = None,
    disabled: bool | None = None,
    actor: str,
    client_address: str | None = None,
) -> User:
    """Change the role and/or disable or enable the account; a setting already in place is
    left as is (and not audited)."""
    user = require_user(conn, name)
    if role is not None and role != user.role:
        user = set_role(conn, user.name, role, actor=actor, client_address=client_address)
    if disabled is not None and disabled != user.disabled:
        user = set_disabled(conn, user.name, disabled, actor=actor, client_address=client_address)
    return user


def remove_user(
    conn: sqlite3.Connection,
    name: str,
    *,
    actor: str,
    client_address: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    user = require_user(conn, name)
    _refuse_own_account(user, actor, N_("you cannot remove your own account; another admin can"))
    with transaction(conn):
        _refuse_last_admin(
            conn, user, N_("'{name}' is the last enabled admin; add another admin first")
        )
        # Sessions and tokens go with the user (ON DELETE CASCADE).
        conn.execute("DELETE FROM user WHERE id = ?", (user.id,))
        audit.record(
            conn, actor, "user.remove", client_address=client_address, clock=clock, user=user.name
        )


def authenticate(conn: sqlite3.Connection, name: str, password: str) -> User | None:
    """The user if the password is right and the account usable, else None.

    Takes the same time whether or not the user exists, so a login attempt does not tell
    which names are accounts.
    """
    row = conn.execute("SELECT * FROM user WHERE name = ?", (name,)).fetchone()
    if row is None or row["password_hash"] is None:
        passwords.verify_unknown_user(password)
        return None
    if not passwords.verify_password(row["password_hash"], password):
        return None
    if passwords.needs_rehash(row["password_hash"]):
        with transaction(conn):
            conn.execute(
                "UPDATE user SET password_hash = ? WHERE id = ?",
                (passwords.hash_password(password), row["id"]),
            )
    user = _user(row)
    return None if user.disabled else user


# -- second factor -----------------------------------------------------------------------
def begin_totp(conn: sqlite3.Connection, user_id: int, *, clock: Clock = SYSTEM_CLOCK) -> str:
    """A new TOTP secret, stored but not yet in force until :func:`confirm_totp`."""
    secret = totp.new_secret()
    with transaction(conn):
        conn.execute(
            "UPDATE user SET totp_secret = ?, totp_enabled = 0, totp_last_step = NULL,"
            " updated_at = ? WHERE id = ? AND totp_enabled = 0",
            (secret, clock.now(), user_id),
        )
    return secret


def pending_totp_secret(conn: sqlite3.Connection, user_id: int) -> str | None:
    row = conn.execute(
        "SELECT totp_secret FROM user WHERE id = ? AND totp_enabled = 0", (user_id,)
    ).fetchone()
    return row["totp_secret"] if row else None


def confirm_totp(
    conn: sqlite3.Connection,
    user_id: int,
    code: str,
    *,
    actor: str,
    client_address: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> list[str]:
    """Turn TOTP on if ``code`` matches the pending secret; returns fresh recovery codes."""
    row = conn.execute("SELECT * FROM user WHERE id = ?", (user_id,)).fetchone()
    if row is None or row["totp_enabled"] or not row["totp_secret"]:
        raise UserInvalid(N_("start the set-up again: there is no pending authenticator"))
    step = totp.verify_totp(row["totp_secret"], code, last_used_step=None, now=clock.now())
    if step is None:
        raise UserInvalid(
            N_("that code is not right; check the clock of your phone and try again"),
            field="code",
        )
    codes = totp.generate_recovery_codes()
    with transaction(conn):
        conn.execute(
            "UPDATE user SET totp_enabled = 1, totp_last_step = ?, updated_at = ? WHERE id = ?",
            (step, clock.now(), user_id),
        )
        _replace_recovery_codes(conn, user_id, codes)
        audit.record(
            conn,
            actor,
            "user.totp_enable",
            client_address=client_address,
            clock=clock,
            user=row["name"],
        )
    return codes


def _replace_recovery_codes(conn: sqlite3.Connection, user_id: int, codes: list[str]) -> None:
    conn.execute("DELETE FROM recovery_code WHERE user_id = ?", (user_id,))
    conn.executemany(
        "INSERT INTO recovery_code (user_id, code_hash) VALUES (?, ?)",
        [(user_id, totp.hash_recovery_code(code)) for code in codes],
    )


def new_recovery_codes(
    conn: sqlite3.Connection, user_id: int, *, actor: str, clock: Clock = SYSTEM_CLOCK
) -> list[str]:
    codes = totp.generate_recovery_codes()
    with transaction(conn):
        _replace_recovery_codes(conn, user_id, codes)
        audit.record(conn, actor, "user.recovery_codes", clock=clock, user_id=user_id)
    return codes


def verify_second_factor(
    conn: sqlite3.Connection, user_id: int, code: str, *, clock: Clock = SYSTEM_CLOCK
) -> Literal["totp", "recovery"] | None:
    """Check a TOTP code (never the same time step twice) or consume a recovery code."""
    with transaction(conn):
        row = conn.execute(
            "SELECT totp_secret, totp_last_step FROM user WHERE id = ? AND totp_enabled = 1",
            (user_id,),
        ).fetchone()
        if row is None:
            return None
        step = totp.verify_totp(
            row["totp_secret"], code, last_used_step=row["totp_last_step"], now=clock.now()
        )
        if step is not None:
            conn.execute("UPDATE user SET totp_last_step = ? WHERE id = ?", (step, user_id))
            return "totp"
        unused = conn.execute(
            "SELECT id, code_hash FROM recovery_code WHERE user_id = ? AND used_at IS NULL",
            (user_id,),
        ).fetchall()
        index = totp.match_recovery_code(code, [r["code_hash"] for r in unused])
        if index is None:
            return None
        conn.execute(
            "UPDATE recovery_code SET used_at = ? WHERE id = ?", (clock.now(), unused[index]["id"])
        )
        return "recovery"


def disable_totp(
    conn: sqlite3.Connection,
    name: str,
    *,
    actor: str,
    client_address: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Turn the second factor off (the owner with a code, or an admin: ``user reset-2fa``)."""
    user = require_user(conn, name)
    with transaction(conn):
        conn.execute(
            "UPDATE user SET totp_secret = NULL, totp_enabled = 0, totp_last_step = NULL,"
            " updated_at = ? WHERE id = ?",
            (clock.now(), user.id),
        )
        conn.execute("DELETE FROM recovery_code WHERE user_id = ?", (user.id,))
        audit.record(
            conn,
            actor,
            "user.totp_reset",
            client_address=client_address,
            clock=clock,
            user=user.name,
        )


# -- first start --------------------------------------------------------------------------
def password_hashes(conn: sqlite3.Connection) -> list[str]:
    """Every stored password hash (what the unknown-user dummy must cost as much as)."""
    rows = conn.execute("SELECT password_hash FROM user WHERE password_hash IS NOT NULL")
    return [row[0] for row in rows]


def ensure_initial_admin(
    conn: sqlite3.Connection, name: str, password: str | None, *, clock: Clock = SYSTEM_CLOCK
) -> str | None:
    """Create the first admin if there is no admin account yet: on a fresh data directory,
    and also when only ``user`` accounts were made with the CLI before the first start.
    Returns a generated password to show once, or None when an admin existed already or
    the password was given. Raises ``UserExistsError`` when there is no admin and ``name``
    is taken by a ``user`` account (which is not promoted behind the owner's back)."""
    if conn.execute("SELECT count(*) FROM user WHERE role = 'admin'").fetchone()[0]:
        return None
    if get_user(conn, name) is not None:
        raise UserExistsError(
            N_(
                "there is no admin account, and '{name}' is a user account; make it an admin "
                "with 'cemm-gateway user role {name} admin', or set auth.initial_admin to a "
                "free name"
            ),
            name=name,
        )
    generated = None
    if not password:
        password = generated = passwords.generate_password(username=name)
    add_user(conn, name, role="admin", password=password, actor="system:first-start", clock=clock)
    return generated
