"""What the admin JSON API accepts and answers: pydantic models, so the OpenAPI document
at ``/openapi.json`` describes every request and response exactly.

A record the services keep (a user, an API token, a session...) is defined once, as the
service's frozen dataclass (see :mod:`gateway.admin.answers`). Its ``*Out`` model here
either extends it - a pydantic dataclass adding what only the admin app can say
(``active`` now, ``admits_you`` for the caller), the record deciding which of its fields
stay inside (``Field(exclude=True)``) and which are named differently outside
(``serialization_alias``) - or, where the answer orders the fields otherwise or places
computed values between them, is made from it by ``answer_of``, with that order, the
fields left out or renamed and the values added stated beside the model. Either way a
field the record gains is seen, not leaked: ``answer_of`` refuses a field it is not told
to show or hide, and a test pins the field list of every answer.

Input text is plain: no control characters and no lone surrogates (which SQLite could not
store), within stated lengths. Times are Unix timestamps in seconds (floats), as the
service layer keeps them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.dataclasses import dataclass as shown_record

from gateway.admin.answers import RecordAnswer, answer_of
from gateway.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from gateway.policy.credentials import SessionInfo
from gateway.services.allowlist import Entry
from gateway.services.api_tokens import ApiToken
from gateway.services.audit import AuditEntry
from gateway.services.bans import Ban
from gateway.services.guests import MAX_BROWSERS
from gateway.services.peers import Peer
from gateway.services.users import User


def _plain(value: str) -> str:
    for char in value:
        code = ord(char)
        if code < 32 or code == 127 or 0xD800 <= code <= 0xDFFF:
            raise ValueError("must be plain text, without control characters")
    return value


def _password_text(value: str) -> str:
    # Anything a person can type; not NUL or lone surrogates, which cannot be hashed.
    if any(char == "\x00" or 0xD800 <= ord(char) <= 0xDFFF for char in value):
        raise ValueError("must be text without NUL characters")
    return value


# The patterns say in the OpenAPI document what the validators check.
PlainText = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]*$"), AfterValidator(_plain)]
# Patterns are not combined: each type has exactly one, which is what the document shows.
USER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
UserName = Annotated[str, Field(min_length=1, max_length=64, pattern=USER_NAME_PATTERN)]
# The Field comes before the validator: constraints after an AfterValidator are left out
# of the JSON schema, and the document would not say that NUL is refused.
Password = Annotated[
    str,
    Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH, pattern=r"^[^\x00]*$"),
    AfterValidator(_password_text),
]
Expiry = Annotated[
    str,
    Field(
        max_length=16,
        pattern=r"^(never|[1-9][0-9]{0,4}[smhdw])$",
        description="never, or a duration: a number and a unit s, m, h, d or w (7d, 12h)",
    ),
]
Role = Literal["admin", "user", "viewer"]


class _Input(BaseModel):
    # Strict: a JSON 0 is not false, a number is not a string.
    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorOut(BaseModel):
    """Every refusal of the admin API: a stable code and a sentence that says what to do."""

    error: str = Field(description="stable machine-readable code, e.g. not_found")
    detail: str = Field(description="what went wrong, in words a person can act on")
    field: str | None = Field(
        default=None, description="the field the refusal is about, when it is about one"
    )


class FieldErrorOut(BaseModel):
    location: str = Field(
        description="where in the request: body, query, path or header, then the field "
        "(body.name, query.limit, body.items[0])"
    )
    message: str = Field(description="what is wrong with it")


class ValidationErrorOut(ErrorOut):
    """A request that does not fit the operation's schema (422). ``error`` is
    ``invalid_request``; ``detail`` names every field at fault and what is wrong with it,
    ``errors`` lists the same one by one. The values sent are never repeated."""

    errors: list[FieldErrorOut]


class SelfLockoutOut(ErrorOut):
    """A change that would cut off the caller's own address; send it again confirmed."""

    address: str
    admitted_until: float | None = Field(
        description="when the address would stop being admitted; null: at once"
    )


class WideNetworkOut(ErrorOut):
    """A network that admits very many strangers (0.0.0.0/0, ::/0, a public network wider
    than /16); the detail says what it means. Send it again with ``confirm_wide``."""

    network: str


class MeOut(BaseModel):
    user: str
    role: str
    via: Literal["session", "token"]
    session_id: str | None
    csrf_token: str | None = Field(
        description="send as X-CSRF-Token with every state-changing request of this session"
    )
    client_address: str


# -- allowlist --------------------------------------------------------------------------
@shown_record(frozen=True, kw_only=True)
class AllowlistEntryOut(Entry):
    # An entry as the API answers it: the record, whether it admits now, and whether it
    # admits the caller.
    active: bool
    admits_you: Annotated[bool, Field(description="whether this entry admits the caller's address")]


class AllowlistOut(BaseModel):
    your_address: str
    default_networks: list[str] = Field(description="always admitted on the web and ws ports")
    admin_networks: list[str] = Field(description="the only networks admitted on this port")
    entries: list[AllowlistEntryOut]


class AllowlistAdd(_Input):
    network: str = Field(
        min_length=2,
        max_length=50,
        pattern=r"^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$",
        description="an IPv4 or IPv6 network (192.168.1.0/24) or a single address; the "
        "gateway checks it strictly (no shorthand, no host bits set) and says what is wrong",
    )
    label: PlainText = Field(default="", max_length=200)
    expires: Expiry = "never"
    confirm_lockout: bool = Field(
        default=False, description="change it even if it cuts off your own address"
    )
    confirm_wide: bool = Field(
        default=False,
        description="add it even if it is 0.0.0.0/0, ::/0 or a public network wider than /16 "
        "(refused with 409 wide_network without it: anyone in it could connect and try to "
        "log in)",
    )


# -- users ------------------------------------------------------------------------------
@shown_record(frozen=True, kw_only=True)
class UserOut(User):
    # A user as the API answers it: the record, nothing added. (No docstring: it would
    # become the schema's description.) The row id, never answered, may be left out by
    # whoever shows a user that is not stored (a page's preview).
    id: int = Field(default=0, exclude=True)


class UserAdd(_Input):
    name: UserName
    role: Role = "user"
    password: Password | None = Field(
        default=None, description="omit to have one generated and answered once"
    )


class UserChange(_Input):
    role: Role | None = None
    disabled: bool | None = None


class PasswordSet(_Input):
    password: Password | None = Field(
        default=None, description="omit to have one generated and answered once"
    )


class UserAdded(BaseModel):
    user: UserOut
    generated_password: str | None = Field(description="shown only in this answer")


class PasswordSetOut(BaseModel):
    generated_password: str | None = Field(description="shown only in this answer")


class RevokedCount(BaseModel):
    ended: int


# -- API tokens -------------------------------------------------------------------------
@shown_record(frozen=True, kw_only=True)
class TokenOut(ApiToken):
    # A token as the API answers it: the record, and whether it works now.
    active: bool


class TokenCreate(_Input):
    user: UserName
    name: PlainText = Field(min_length=1, max_length=100)
    read_only: bool = False
    expires: Expiry = "never"


class TokenCreated(BaseModel):
    token: str = Field(description="the token itself; shown only in this answer")
    record: TokenOut


# -- sessions ---------------------------------------------------------------------------
# A session's CSRF token is answered to that session alone (MeOut); the user's row id never.
@answer_of(
    SessionInfo,
    (
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
    ),
    hidden=("user_id", "csrf_token"),
    renamed={"user_name": "user"},
)
class SessionOut(RecordAnswer):
    current: bool = Field(description="the session making this request")
    live_websocket: bool | None = Field(
        description="whether a WebSocket of this session is open (null: not known)"
    )


# -- bans -------------------------------------------------------------------------------
# ``kind`` and ``target``: the subject ("user:anna", "address:192.0.2.7") read for a person.
@answer_of(Ban, ("id", "subject", "kind", "target", "reason", "created_at", "until"))
class BanOut(RecordAnswer):
    kind: Literal["user", "address", "other"]
    target: str


# -- guest links ------------------------------------------------------------------------
def _whole(value: object) -> object:
    """JSON has no integers apart from numbers: ``2.0`` is the whole number 2."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class GuestCreate(_Input):
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")]
    role: Literal["viewer", "user"] = "viewer"
    expires: Annotated[
        str, Field(min_length=1, max_length=32, description="a duration (8h) or a moment")
    ]
    browsers: Annotated[int, Field(ge=1, le=MAX_BROWSERS), BeforeValidator(_whole)] = 1


# -- audit ------------------------------------------------------------------------------
class AuditOut(BaseModel):
    entries: list[AuditEntry] = Field(description="the audit log's own records")
    limit: int
    more: bool = Field(description="whether more entries match than were answered")


# -- WireGuard peers --------------------------------------------------------------------
PEER_NAME_PATTERN = r"^[A-Za-z0-9._-]([A-Za-z0-9._ -]{0,62}[A-Za-z0-9._-])?$"
PeerName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=PEER_NAME_PATTERN,
        description="letters, digits, spaces, '.', '_' or '-', e.g. 'anna phone'",
    ),
]


@answer_of(
    Peer,
    (
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
    ),
    hidden=("id",),
    renamed={"user_name": "user"},
    described={
        "user": "the owning user, if any",
        "trusted": "a trusted device: its tunnel address needs no login",
        "config_available": "whether the gateway still holds the generated private key "
        "(until the first handshake or 24 hours): only then can the configuration be shown",
    },
)
class PeerOut(RecordAnswer):
    state: Literal["enabled", "disabled", "expired"] = Field(
        description="enabled: in the interface; disabled or expired: gets nothing through"
    )
    latest_handshake: float | None = Field(description="from the interface; null: never")
    handshake_age: float | None = Field(description="seconds since the latest handshake")
    rx_bytes: int | None = Field(description="received from the peer; null: not known")
    tx_bytes: int | None = Field(description="sent to the peer; null: not known")


class PeerAdd(_Input):
    name: PeerName
    user: UserName | None = Field(default=None, description="the owning user")
    public_key: str | None = Field(
        default=None,
        min_length=44,
        max_length=44,
        pattern=r"^[A-Za-z0-9+/]{43}=$",
        description="the peer's own public key; omit to have a key pair generated (the "
        "configuration is then answered once)",
    )
    trusted: bool = False
    expires: Expiry = "never"


class PeerChange(_Input):
    enabled: bool | None = None
    trusted: bool | None = None


class PeerAdded(BaseModel):
    peer: PeerOut
    config: str | None = Field(
        description="the client configuration (.conf) when the gateway generated the key pair; "
        "shown in this answer (and by a one-time link until the first handshake)"
    )


class PeerConfigOut(BaseModel):
    peer: PeerOut
    config: str = Field(description="the new client configuration (.conf)")


class PeerLinkOut(BaseModel):
    path: str = Field(
        description="the one-time link's path on the web port (/.gateway/peer/<token>): it "
        "works once, within 15 minutes, without a login"
    )
    url: str | None = Field(description="the full link, as far as the gateway can tell")
    expires_at: float
