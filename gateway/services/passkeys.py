"""Passkeys (WebAuthn credentials) as use cases: make one, list them, remove them, and
check an assertion made with one. The ceremony (CBOR, COSE keys, signatures, client data)
is the ``webauthn`` library's; the decisions that are the gateway's own (which relying
party, whether a signature counter is believable) are :mod:`gateway.policy.passkeys`.

- :func:`registration_options` / :func:`finish_registration`: a new passkey for an account
  (discoverable, user verification required, attestation ``none``), stored with the
  relying-party ID it was made for; audited as ``passkey.registered``.
- :func:`authentication_options`: the request for an assertion - without credentials for
  a login with a passkey alone (the browser offers the account's discoverable passkeys),
  or with an account's credentials for the second step after a password.
- :func:`check_assertion`: the account whose passkey signed, else None. It is the
  ``verify`` step of the one gate (:mod:`gateway.portal.guesses`), like a password check:
  never call it outside the gate. None for an unknown credential, another relying party or
  origin, a wrong signature, a challenge not the one issued, no user verification, a
  disabled account, or a credential of another account than the one expected. A signature
  counter that went backwards (:func:`gateway.policy.passkeys.counter_believable`) is
  refused too and audited as ``passkey.cloned``. A good assertion updates the counter and
  the last-used time and is audited as ``passkey.used``.
- :func:`remove_passkey`: audited as ``passkey.removed``; :func:`reset_second_factor`
  (``user reset-2fa``) turns TOTP off and removes every passkey of the account.

Challenges are single-use: the caller issues one per ceremony and forgets it once an
answer was checked, so a replayed assertion finds no challenge (and, from an authenticator
that counts, a counter no larger than the stored one).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.i18n import N_
from gateway.policy.passkeys import RelyingParty, counter_believable
from gateway.services import audit, users
from gateway.services.errors import Invalid, NotFound
from gateway.services.users import User
from gateway.store.db import transaction

if TYPE_CHECKING:
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor

# The webauthn library (and the ASN.1 and CBOR parsers it brings, ~3 MB) is imported by the
# ceremonies that use it, not by every gateway that never sees a passkey.

__all__ = [
    "Ceremony",
    "Passkey",
    "authentication_options",
    "check_assertion",
    "credential_owner",
    "finish_registration",
    "list_passkeys",
    "registration_options",
    "remove_passkey",
    "reset_second_factor",
]

RP_NAME = "cemm-gateway"
TIMEOUT_MS = 300_000
MAX_NAME = 64


@dataclass(frozen=True)
class Passkey:
    """A passkey's record (the admin API answers it as ``PasskeyOut``); the credential's
    public key is no part of it, and its id and the owner's row id stay inside."""

    id: int
    user_id: Annotated[int, Field(exclude=True)]
    user_name: Annotated[str, Field(serialization_alias="user")]
    name: str
    credential_id: Annotated[str, Field(exclude=True)]
    rp_id: str
    transports: tuple[str, ...]
    sign_count: int
    created_at: float
    last_used_at: float | None


@dataclass(frozen=True)
class Ceremony:
    """What the browser gets (``options``, JSON text) and what the gateway keeps to check
    the answer (the single-use ``challenge`` and the relying party)."""

    options: str
    challenge: bytes
    rp: RelyingParty


_SELECT = (
    "SELECT passkey.*, user.name AS user_name FROM passkey JOIN user ON user.id = passkey.user_id"
)


def _passkey(row: sqlite3.Row) -> Passkey:
    return Passkey(
        id=row["id"],
        user_id=row["user_id"],
        user_name=row["user_name"],
        name=row["name"],
        credential_id=row["credential_id"],
        rp_id=row["rp_id"],
        sign_count=row["sign_count"],
        transports=tuple(json.loads(row["transports"])),
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
    )


def list_passkeys(
    conn: sqlite3.Connection, *, user_id: int | None = None, user_name: str | None = None
) -> list[Passkey]:
    """Every passkey, or one account's (by id or name), oldest first."""
    if user_name is not None:
        user_id = users.require_user(conn, user_name).id
    if user_id is None:
        rows = conn.execute(f"{_SELECT} ORDER BY passkey.id").fetchall()
    else:
        rows = conn.execute(
            f"{_SELECT} WHERE passkey.user_id = ? ORDER BY passkey.id", (user_id,)
        ).fetchall()
    return [_passkey(row) for row in rows]


def _descriptors(found: list[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    from webauthn.helpers import base64url_to_bytes
    from webauthn.helpers.structs import AuthenticatorTransport, PublicKeyCredentialDescriptor

    known = {transport.value for transport in AuthenticatorTransport}
    return [
        PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(passkey.credential_id),
            transports=[AuthenticatorTransport(t) for t in passkey.transports if t in known],
        )
        for passkey in found
    ]


def registration_options(conn: sqlite3.Connection, user: User, rp: RelyingParty) -> Ceremony:
    """The browser's ``navigator.credentials.create`` options for a new passkey of ``user``
    (its existing ones for this relying party excluded, so one authenticator holds one)."""
    from webauthn import generate_registration_options, options_to_json
    from webauthn.helpers.structs import (
        AttestationConveyancePreference,
        AuthenticatorSelectionCriteria,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    existing = [p for p in list_passkeys(conn, user_id=user.id) if p.rp_id == rp.id]
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=RP_NAME,
        user_id=str(user.id).encode(),
        user_name=user.name,
        user_display_name=user.name,
        timeout=TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(existing),
    )
    return Ceremony(options_to_json(options), options.challenge, rp)


def check_name(name: str) -> str:
    """The name as stored: spaces collapsed, plain text only (it is shown in the admin's
    terminal, where a control character such as ESC would start a command)."""
    name = " ".join(name.split())
    if not name:
        raise Invalid(N_("Give the passkey a name, e.g. 'phone'."), field="name")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        raise Invalid(
            N_("A passkey's name is plain text, without control characters."), field="name"
        )
    if len(name) > MAX_NAME:
        raise Invalid(
            N_("A passkey's name has at most {count} characters."), field="name", count=MAX_NAME
        )
    return name


def finish_registration(
    conn: sqlite3.Connection,
    user_id: int,
    ceremony: Ceremony,
    credential: dict[str, Any],
    *,
    name: str,
    actor: str,
    clock: Clock = SYSTEM_CLOCK,
) -> Passkey:
    """Store the passkey the browser made for ``ceremony``; Invalid when it does not verify."""
    from webauthn import verify_registration_response
    from webauthn.helpers import bytes_to_base64url
    from webauthn.helpers.exceptions import WebAuthnException

    name = check_name(name)
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=ceremony.challenge,
            expected_rp_id=ceremony.rp.id,
            expected_origin=ceremony.rp.origin,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as error:
        raise Invalid(N_("The browser's answer was not accepted: {error}"), error=error) from None
    credential_id = bytes_to_base64url(verified.credential_id)
    raw_transports = credential.get("response", {}).get("transports") or []
    transports = [str(t) for t in raw_transports if isinstance(t, str)][:8]
    user = users.get_user_by_id(conn, user_id)
    if user is None:
        raise NotFound(N_("The account no longer exists."))
    with transaction(conn):
        if conn.execute(
            "SELECT 1 FROM passkey WHERE credential_id = ?", (credential_id,)
        ).fetchone():
            raise Invalid(N_("This passkey is registered already."))
        cursor = conn.execute(
            "INSERT INTO passkey (user_id, name, credential_id, public_key, sign_count, rp_id,"
            " transports, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                user_id,
                name,
                credential_id,
                verified.credential_public_key,
                verified.sign_count,
                ceremony.rp.id,
                json.dumps(transports),
                clock.now(),
            ),
        )
        audit.record(
            conn,
            actor,
            "passkey.registered",
            clock=clock,
            user=user.name,
            passkey=cursor.lastrowid,
            name=name,
            rp_id=ceremony.rp.id,
        )
    return _get(conn, int(cursor.lastrowid or 0))


def _find(conn: sqlite3.Connection, passkey_id: int) -> Passkey | None:
    row = conn.execute(f"{_SELECT} WHERE passkey.id = ?", (passkey_id,)).fetchone()
    return None if row is None else _passkey(row)


def _get(conn: sqlite3.Connection, passkey_id: int) -> Passkey:
    passkey = _find(conn, passkey_id)
    if passkey is None:
        raise NotFound(
            N_("there is no passkey {id}; 'cemm-gateway passkey list' shows them"), id=passkey_id
        )
    return passkey


def authentication_options(
    conn: sqlite3.Connection, rp: RelyingParty, *, user_id: int | None = None
) -> Ceremony:
    """The browser's ``navigator.credentials.get`` options: for any discoverable passkey of
    this relying party (``user_id`` None), or for that account's passkeys."""
    from webauthn import generate_authentication_options, options_to_json
    from webauthn.helpers.structs import UserVerificationRequirement

    allowed: list[PublicKeyCredentialDescriptor] | None = None
    if user_id is not None:
        allowed = _descriptors(
            [p for p in list_passkeys(conn, user_id=user_id) if p.rp_id == rp.id]
        )
    options = generate_authentication_options(
        rp_id=rp.id,
        timeout=TIMEOUT_MS,
        allow_credentials=allowed,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return Ceremony(options_to_json(options), options.challenge, rp)


def credential_owner(conn: sqlite3.Connection, credential: dict[str, Any]) -> str:
    """The name of the account the answer's credential belongs to ("" when unknown): the
    account the one gate counts the guess against."""
    row = conn.execute(
        "SELECT user.name FROM passkey JOIN user ON user.id = passkey.user_id"
        " WHERE passkey.credential_id = ?",
        (str(credential.get("id", "")),),
    ).fetchone()
    return str(row[0]) if row else ""


def check_assertion(
    conn: sqlite3.Connection,
    ceremony: Ceremony,
    credential: dict[str, Any],
    *,
    user_id: int | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> User | None:
    """The account whose passkey signed this answer to ``ceremony``; None when refused
    (see the module's docstring). ``user_id``: only that account's passkeys count."""
    from webauthn import verify_authentication_response
    from webauthn.helpers.exceptions import WebAuthnException

    row = conn.execute(
        f"{_SELECT} WHERE passkey.credential_id = ?", (str(credential.get("id", "")),)
    ).fetchone()
    if row is None or row["rp_id"] != ceremony.rp.id:
        return None
    passkey = _passkey(row)
    if user_id is not None and passkey.user_id != user_id:
        return None
    try:
        # The counter is compared here, after the signature is known to be good, so a
        # cloned key is told apart from a forged answer (the library would refuse both).
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=ceremony.challenge,
            expected_rp_id=ceremony.rp.id,
            expected_origin=ceremony.rp.origin,
            credential_public_key=row["public_key"],
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError):
        return None
    handle = _user_handle(credential)
    if handle is not None and handle != str(passkey.user_id):
        return None
    return _used(conn, passkey, verified.new_sign_count, clock)


def _user_handle(credential: dict[str, Any]) -> str | None:
    from webauthn.helpers import base64url_to_bytes

    raw = credential.get("response", {}).get("userHandle")
    if not raw:
        return None
    try:
        return base64url_to_bytes(str(raw)).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


def _used(conn: sqlite3.Connection, passkey: Passkey, reported: int, clock: Clock) -> User | None:
    user = users.get_user_by_id(conn, passkey.user_id)
    if user is None or user.disabled:
        return None
    with transaction(conn):
        if not counter_believable(passkey.sign_count, reported):
            audit.record(
                conn,
                user.name,
                "passkey.cloned",
                clock=clock,
                user=user.name,
                passkey=passkey.id,
                name=passkey.name,
                stored_count=passkey.sign_count,
                reported_count=reported,
            )
            return None
        conn.execute(
            "UPDATE passkey SET sign_count = ?, last_used_at = ? WHERE id = ?",
            (reported, clock.now(), passkey.id),
        )
        audit.record(
            conn, user.name, "passkey.used", clock=clock, passkey=passkey.id, name=passkey.name
        )
    return user


def remove_passkey(
    conn: sqlite3.Connection,
    passkey_id: int,
    *,
    actor: str,
    user_id: int | None = None,
    owner: str | None = None,
    client_address: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Passkey:
    """Remove one passkey (``user_id`` or ``owner``, a name: only if it is that account's;
    else NotFound)."""
    if user_id is None:
        passkey = _get(conn, passkey_id)
    else:
        mine = _find(conn, passkey_id)
        if mine is None or mine.user_id != user_id:
            # The same answer whether it is another account's or none at all.
            raise NotFound(N_("There is no such passkey on your account."))
        passkey = mine
    if owner is not None and passkey.user_name.lower() != owner.lower():
        raise NotFound(N_("{owner} has no passkey {id}."), owner=owner, id=passkey_id)
    with transaction(conn):
        conn.execute("DELETE FROM passkey WHERE id = ?", (passkey.id,))
        audit.record(
            conn,
            actor,
            "passkey.removed",
            client_address=client_address,
            clock=clock,
            user=passkey.user_name,
            passkey=passkey.id,
            name=passkey.name,
        )
    return passkey


def has_passkeys(conn: sqlite3.Connection, user_id: int) -> bool:
    return (
        conn.execute("SELECT 1 FROM passkey WHERE user_id = ?", (user_id,)).fetchone() is not None
    )


def reset_second_factor(
    conn: sqlite3.Connection,
    name: str,
    *,
    actor: str,
    client_address: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> int:
    """``user reset-2fa``: the authenticator off and every passkey removed (an account
    that lost its phone starts over); how many passkeys were removed."""
    users.disable_totp(conn, name, actor=actor, client_address=client_address, clock=clock)
    found = list_passkeys(conn, user_name=name)
    for passkey in found:
        remove_passkey(conn, passkey.id, actor=actor, client_address=client_address, clock=clock)
    return len(found)


def admins_without_second_factor(conn: sqlite3.Connection) -> list[str]:
    """Enabled admin accounts that log in with a password and have neither an
    authenticator app nor a passkey (the dashboard warns about each)."""
    rows = conn.execute(
        "SELECT name FROM user WHERE role = 'admin' AND disabled = 0"
        " AND password_hash IS NOT NULL AND totp_enabled = 0"
        " AND NOT EXISTS (SELECT 1 FROM passkey WHERE passkey.user_id = user.id)"
        " ORDER BY name"
    ).fetchall()
    return [str(row[0]) for row in rows]
