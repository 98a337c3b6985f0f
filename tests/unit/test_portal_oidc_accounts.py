"""Which local account an OIDC identity logs in as (gateway/services/oidc_accounts.py):
the rule of its docstring, row by row, on a real database."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from gateway.auth.oidc import OidcConfig, OidcIdentity
from gateway.services import audit, oidc_accounts, users
from gateway.services.errors import Forbidden
from gateway.store import db

CONFIG = OidcConfig(
    discovery_url="https://auth.example.com/.well-known/openid-configuration",
    client_id="gateway",
    client_secret="secret",
    redirect_uri="https://gateway.example.com/.gateway/oidc/callback",
    allowed_emails=("Bea@Example.com",),
    allowed_groups=("family",),
)
BEA = OidcIdentity(
    issuer="https://auth.example.com",
    subject="sub-bea",
    email="bea@example.com",
    email_verified=True,
    name="Bea",
    groups=(),
)


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return db.connect(tmp_path / "gateway.db")


def _identity(**changes: object) -> OidcIdentity:
    return dataclasses.replace(BEA, **changes)  # type: ignore[arg-type]


def test_an_allowed_address_creates_a_linked_user_once(conn: sqlite3.Connection) -> None:
    created = oidc_accounts.account_for(conn, BEA, CONFIG)
    assert created is not None
    assert (created.name, created.role, created.has_password) == ("bea", "user", False)
    assert oidc_accounts.account_for(conn, BEA, CONFIG) == created  # by issuer and subject
    assert [u.name for u in users.list_users(conn)] == ["bea"]


def test_an_allowed_group_creates_a_user_with_a_free_name(conn: sqlite3.Connection) -> None:
    users.add_user(conn, "carl", role="user", password="a long enough pass phrase", actor="t")
    carl = _identity(
        subject="sub-carl", email="carl@example.com", groups=("family",), preferred_username="carl"
    )
    created = oidc_accounts.account_for(conn, carl, CONFIG)
    assert created is not None and created.name == "carl-2"


def test_an_address_of_a_local_user_links_to_it(conn: sqlite3.Connection) -> None:
    dora = users.add_user(
        conn, "dora", role="admin", password="a long enough pass phrase", actor="t"
    )
    conn.execute("UPDATE user SET email = 'dora@example.com' WHERE id = ?", (dora.id,))
    found = oidc_accounts.account_for(conn, _identity(email="Dora@Example.com"), CONFIG)
    assert found is not None and found.name == "dora"


@pytest.mark.parametrize(
    "identity",
    [
        _identity(email="eve@example.com"),  # neither address nor group allowed
        _identity(email_verified=False),  # an unverified address counts for nothing
        _identity(email=None, groups=("family",)),  # a group, but no address to name it by
    ],
)
def test_nobody_for_an_identity_the_configuration_does_not_admit(
    conn: sqlite3.Connection, identity: OidcIdentity
) -> None:
    assert oidc_accounts.account_for(conn, identity, CONFIG) is None
    assert users.list_users(conn) == []


def test_a_disabled_account_logs_nobody_in(conn: sqlite3.Connection) -> None:
    created = oidc_accounts.account_for(conn, BEA, CONFIG)
    assert created is not None
    users.set_disabled(conn, created.name, True, actor="test")
    assert oidc_accounts.account_for(conn, BEA, CONFIG) is None


def test_a_refused_sign_in_is_recorded_and_forbidden(conn: sqlite3.Connection) -> None:
    eve = _identity(email="eve@example.com")
    with pytest.raises(Forbidden, match="not allowed to use this gateway"):
        oidc_accounts.sign_in(conn, eve, CONFIG, client_address="192.0.2.9", user_agent="ua")
    entry = audit.entries(conn)[0]
    assert (entry.actor, entry.event, entry.client_address) == (
        "eve@example.com",
        "login.failure",
        "192.0.2.9",
    )
    assert entry.detail == {"reason": oidc_accounts.NOT_ADMITTED}


@pytest.mark.parametrize(
    ("preferred", "email", "name"),
    [
        ("bea", "x@example.com", "bea"),
        (None, "bea.smith@example.com", "bea.smith"),
        ("..Bea Smith!", "x@example.com", "BeaSmith"),
        ("!!!", "x@example.com", "user"),
        ("b" * 60, "x@example.com", "b" * 48),
    ],
)
def test_local_names(preferred: str | None, email: str, name: str) -> None:
    assert oidc_accounts.local_name(_identity(preferred_username=preferred), email) == name
