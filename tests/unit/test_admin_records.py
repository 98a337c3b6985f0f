"""The records the admin API answers carry exactly their documented fields.

A record is defined once, as the service's dataclass; its ``*Out`` model extends it or is
made from its fields by ``answer_of`` (:mod:`gateway.admin.answers`). A field the record
gains is therefore answered by the API unless the record marks it ``Field(exclude=True)``
or the answer hides it: these tests pin each answer's field set and order, in the answer
and in the document, so a new field - a hash, a secret, a private key - is a failing test
here before it is a leak.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Literal

import pytest
from fastapi import FastAPI
from pydantic import TypeAdapter

from gateway.admin import models, views
from gateway.admin.answers import RecordAnswer, answer_of, shown
from gateway.admin.api import router
from gateway.admin.api.guests import GuestOut, guest_out
from gateway.admin.api.passkeys import PasskeyOut
from gateway.policy.credentials import SessionInfo
from gateway.services.allowlist import Entry
from gateway.services.api_tokens import ApiToken
from gateway.services.bans import Ban
from gateway.services.guests import GuestLink
from gateway.services.passkeys import Passkey
from gateway.services.peers import Peer
from gateway.services.users import User

SECRET = "do-not-show-me"

USER_FIELDS = [
    "name",
    "role",
    "disabled",
    "email",
    "oidc_managed",
    "totp_enabled",
    "has_password",
    "created_at",
]
TOKEN_FIELDS = [
    "id",
    "user",
    "name",
    "read_only",
    "created_at",
    "expires_at",
    "last_used_at",
    "revoked_at",
    "active",
]
ENTRY_FIELDS = [
    "id",
    "network",
    "label",
    "expires_at",
    "created_at",
    "created_by",
    "hits",
    "last_hit_at",
    "active",
    "admits_you",
]
PEER_FIELDS = [
    "name",
    "user",
    "public_key",
    "address_v4",
    "address_v6",
    "enabled",
    "state",
    "trusted",
    "expires_at",
    "created_at",
    "first_handshake_at",
    "config_available",
    "latest_handshake",
    "handshake_age",
    "rx_bytes",
    "tx_bytes",
]
SESSION_FIELDS = [
    "id",
    "user",
    "role",
    "client_address",
    "user_agent",
    "created_at",
    "last_seen_at",
    "expires_at",
    "current",
    "live_websocket",
]
BAN_FIELDS = ["id", "subject", "kind", "target", "reason", "created_at", "until"]
GUEST_FIELDS = [
    "id",
    "name",
    "role",
    "browsers",
    "sessions",
    "created_by",
    "created_at",
    "expires_at",
    "revoked_at",
    "first_used_at",
    "first_used_from",
    "state",
]
PASSKEY_FIELDS = [
    "id",
    "user",
    "name",
    "rp_id",
    "transports",
    "sign_count",
    "created_at",
    "last_used_at",
]


def _user() -> Any:
    return views.user_out(
        User(
            id=4711,
            name="anna",
            role="user",
            disabled=False,
            email=None,
            oidc_managed=False,
            totp_enabled=True,
            has_password=True,
            created_at=1.0,
        )
    )


def _token() -> Any:
    return views.token_out(
        ApiToken(
            id="t1",
            user_name="anna",
            name="ci",
            read_only=True,
            created_at=1.0,
            expires_at=None,
            last_used_at=None,
            revoked_at=None,
            scopes=(f"/{SECRET}",),
        ),
        now=2.0,
    )


def _entry() -> Any:
    return views.entry_out(
        Entry(
            id=3,
            network="192.0.2.0/24",
            label="office",
            expires_at=None,
            created_at=1.0,
            created_by="admin",
            hits=0,
            last_hit_at=None,
        ),
        address="192.0.2.7",
        now=2.0,
    )


def _peer() -> Any:
    return views.peer_out(
        Peer(
            id=4711,
            name="phone",
            user_name="anna",
            public_key="A" * 43 + "=",
            address_v4="10.13.0.2",
            address_v6=None,
            enabled=True,
            trusted=False,
            expires_at=None,
            created_at=1.0,
            first_handshake_at=None,
            config_available=False,
        ),
        {"latest_handshake": 5, "rx_bytes": 10},
        now=2.0,
    )


def _session(*, live: bool = True) -> Any:
    # The proxy's in-memory record of recent use, newer than the stored one.
    context: Any = SimpleNamespace(state=SimpleNamespace(session_activity={"s1": 9.0}))
    return views.session_out(
        context,
        SessionInfo(
            id="s1",
            user_id=4711,
            user_name="anna",
            role="admin",
            csrf_token=SECRET,
            created_at=1.0,
            last_seen_at=2.0,
            expires_at=3.0,
            client_address=None,
            user_agent="Firefox",
        ),
        current="s1",
        live_ids={"s2"} if live else None,
    )


def _ban() -> Any:
    return views.ban_out(
        Ban(id=3, subject="address:192.0.2.7", reason="failures", created_at=1.0, until=2.0)
    )


def _guest() -> Any:
    return guest_out(
        GuestLink(
            id=5,
            name="visitor",
            role="viewer",
            browsers=2,
            created_by="admin",
            created_at=1.0,
            expires_at=2.0,
            revoked_at=None,
            first_used_at=None,
            first_used_from=None,
            sessions=0,
        )
    )


def _passkey() -> Any:
    return shown(
        PasskeyOut,
        Passkey(
            id=1,
            user_id=4711,
            user_name="anna",
            name="laptop",
            credential_id=SECRET,
            rp_id="gateway.example",
            sign_count=0,
            transports=("usb",),
            created_at=1.0,
            last_used_at=None,
        ),
    )


CASES: list[tuple[str, Callable[[], Any], list[str]]] = [
    ("UserOut", _user, USER_FIELDS),
    ("TokenOut", _token, TOKEN_FIELDS),
    ("AllowlistEntryOut", _entry, ENTRY_FIELDS),
    ("PeerOut", _peer, PEER_FIELDS),
    ("PasskeyOut", _passkey, PASSKEY_FIELDS),
    ("SessionOut", _session, SESSION_FIELDS),
    ("BanOut", _ban, BAN_FIELDS),
    ("GuestOut", _guest, GUEST_FIELDS),
]
# Names of what must never be answered: a session's CSRF token and user row, key material,
# hashes of tokens and passwords.
SECRET_NAMES = {
    "csrf_token",
    "user_id",
    "private_key",
    "private_key_sealed",
    "secret_hash",
    "token",
    "token_hash",
    "password_hash",
    "totp_secret",
    "credential_id",
    "public_key_cose",
    "scopes",
}


def _answer(value: Any) -> bytes:
    # What FastAPI does with a response model: serialise in JSON mode, by alias.
    return TypeAdapter(type(value)).dump_json(value, by_alias=True)


@pytest.mark.parametrize(("schema", "build", "fields"), CASES, ids=[c[0] for c in CASES])
def test_an_answer_carries_exactly_its_fields_in_order(
    schema: str, build: Callable[[], Any], fields: list[str]
) -> None:
    answer = _answer(build())
    assert list(json.loads(answer)) == fields
    assert SECRET.encode() not in answer
    assert b"4711" not in answer  # row ids stay inside


@pytest.mark.parametrize(("schema", "build", "fields"), CASES, ids=[c[0] for c in CASES])
def test_the_document_describes_exactly_those_fields(
    schema: str, build: Callable[[], Any], fields: list[str]
) -> None:
    app = FastAPI()
    app.include_router(router)
    described = app.openapi()["components"]["schemas"][schema]
    assert list(described["properties"]) == fields
    assert described["required"] == fields


def test_no_secret_is_named_in_an_answer_or_the_document() -> None:
    app = FastAPI()
    app.include_router(router)
    schemas = app.openapi()["components"]["schemas"]
    for schema, build, _fields in CASES:
        assert not SECRET_NAMES & set(json.loads(_answer(build()))), schema
        assert not SECRET_NAMES & set(schemas[schema]["properties"]), schema


def test_values_keep_their_json_types() -> None:
    # null stays null (not left out), times stay numbers.
    answer = json.loads(_answer(_user()))
    assert answer["email"] is None
    assert answer["created_at"] == 1.0
    assert json.loads(_answer(_token()))["active"] is True
    assert json.loads(_answer(_entry()))["admits_you"] is True
    session = json.loads(_answer(_session(live=False)))
    assert session["client_address"] is None
    assert session["live_websocket"] is None  # not known: null, not left out
    assert session["last_seen_at"] == 9.0  # the later of the stored and the remembered use
    assert session["current"] is True
    assert json.loads(_answer(_session()))["live_websocket"] is False
    ban = json.loads(_answer(_ban()))
    assert (ban["kind"], ban["target"], ban["until"]) == ("address", "192.0.2.7", 2.0)
    guest = json.loads(_answer(_guest()))
    assert (guest["state"], guest["revoked_at"], guest["sessions"]) == ("expired", None, 0)


def test_the_out_models_are_the_records() -> None:
    # One definition: the answer's model is the service's record, extended.
    assert issubclass(models.UserOut, User)
    assert issubclass(models.TokenOut, ApiToken)
    assert issubclass(models.AllowlistEntryOut, Entry)
    assert issubclass(PasskeyOut, Passkey)


@pytest.mark.parametrize(
    ("out", "record"),
    [
        (models.SessionOut, SessionInfo),
        (models.BanOut, Ban),
        (models.PeerOut, Peer),
        (GuestOut, GuestLink),
    ],
)
def test_the_made_answers_take_their_types_from_the_record(out: Any, record: Any) -> None:
    # One definition: every field an answer shows of its record has the record's type.
    hints = typing.get_type_hints(record)
    assert out.record_fields
    for name, source in out.record_fields.items():
        assert out.model_fields[name].annotation == hints[source], name


@dataclasses.dataclass(frozen=True)
class _Record:
    name: str
    secret: str


def test_a_record_field_neither_shown_nor_hidden_is_refused() -> None:
    # A field the record gains stops the import until someone decides where it goes.
    with pytest.raises(TypeError, match="neither placed nor hidden"):

        @answer_of(_Record, ("name",))
        class _Out(RecordAnswer):
            pass

    with pytest.raises(TypeError, match="not in the record"):

        @answer_of(_Record, ("name",), hidden=("secret", "secrett"))
        class _Misspelt(RecordAnswer):
            pass


def test_an_answer_made_from_a_record_in_its_own_order() -> None:
    @answer_of(_Record, ("state", "label"), hidden=("secret",), renamed={"name": "label"})
    class _Out(RecordAnswer):
        state: Literal["on", "off"]

    answer = shown(_Out, _Record(name="a", secret=SECRET), state="on")
    assert _answer(answer) == b'{"state":"on","label":"a"}'
    assert list(_Out.model_json_schema()["properties"]) == ["state", "label"]
