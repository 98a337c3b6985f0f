"""The records the admin API answers carry exactly their documented fields.

A record is defined once, as the service's dataclass, and its ``*Out`` model extends it
(:mod:`gateway.admin.models`). A field the record gains is therefore answered by the API
unless the record marks it ``Field(exclude=True)``: these tests pin each answer's field
set and order, in the answer and in the document, so a new field - a hash, a secret, a
private key - is a failing test here before it is a leak.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import TypeAdapter

from gateway.admin import models, views
from gateway.admin.api import router
from gateway.admin.api.passkeys import PasskeyOut
from gateway.services.allowlist import Entry
from gateway.services.api_tokens import ApiToken
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


def _passkey() -> Any:
    return views.shown(
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
]


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


def test_values_keep_their_json_types() -> None:
    # null stays null (not left out), times stay numbers.
    answer = json.loads(_answer(_user()))
    assert answer["email"] is None
    assert answer["created_at"] == 1.0
    assert json.loads(_answer(_token()))["active"] is True
    assert json.loads(_answer(_entry()))["admits_you"] is True


def test_the_out_models_are_the_records() -> None:
    # One definition: the answer's model is the service's record, extended.
    assert issubclass(models.UserOut, User)
    assert issubclass(models.TokenOut, ApiToken)
    assert issubclass(models.AllowlistEntryOut, Entry)
    assert issubclass(PasskeyOut, Passkey)
