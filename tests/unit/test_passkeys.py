"""Passkeys: the relying-party and counter rules (gateway/policy/passkeys.py) and the
service (gateway/services/passkeys.py) against real signatures from a software
authenticator - another relying party, a replay, a counter going backwards, a disabled
account, all refused."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.policy.names import own_names
from gateway.policy.passkeys import NoPasskeys, RelyingParty, counter_believable, relying_party
from gateway.policy.second_factor import Requirement, must_enrol
from gateway.services import audit, passkeys, users
from gateway.services.errors import Invalid, NotFound
from gateway.store import db
from tests.support.authenticator import SoftAuthenticator

NAMES = own_names(
    public_url="https://cemm.example.org",
    public_hostnames=["gateway.example.net:8443"],
    addresses=["192.168.1.10", "localhost"],
)
RP = RelyingParty("cemm.example.org", "https://cemm.example.org")
OTHER_RP = RelyingParty("gateway.example.net", "https://gateway.example.net:8443")


@pytest.mark.parametrize(
    ("host", "scheme", "expected"),
    [
        ("cemm.example.org", "https", RP),
        ("CEMM.example.org.", "https", RP),
        ("cemm.example.org:443", "https", RP),
        ("gateway.example.net:8443", "https", OTHER_RP),
        ("localhost:8080", "http", RelyingParty("localhost", "http://localhost:8080")),
        ("cemm.example.org", "http", NoPasskeys("not_https")),
        ("192.168.1.10", "https", NoPasskeys("ip_address")),
        ("evil.example", "https", NoPasskeys("not_own_name")),
        ("evil.example:443", "https", NoPasskeys("not_own_name")),
        ("", "https", NoPasskeys("no_host")),
        (None, "https", NoPasskeys("no_host")),
        ("cemm.example.org", "ftp", NoPasskeys("no_host")),
        ("user@cemm.example.org", "https", NoPasskeys("no_host")),
    ],
)
def test_the_relying_party_is_one_of_the_gateways_own_names(
    host: str | None, scheme: str, expected: object
) -> None:
    assert relying_party(host, scheme, NAMES) == expected


@pytest.mark.parametrize(
    ("stored", "reported", "believable"),
    [(0, 0, True), (0, 1, True), (5, 6, True), (5, 5, False), (5, 4, False), (5, 0, False)],
)
def test_a_counter_that_does_not_grow_means_a_cloned_key(
    stored: int, reported: int, believable: bool
) -> None:
    assert counter_believable(stored, reported) is believable


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return db.connect(tmp_path / "gateway.db")


def _register(
    conn: sqlite3.Connection, authenticator: SoftAuthenticator, user: users.User, rp: RelyingParty
) -> passkeys.Passkey:
    ceremony = passkeys.registration_options(conn, user, rp)
    answer = authenticator.create(ceremony.options, rp.origin)
    return passkeys.finish_registration(
        conn, user.id, ceremony, answer, name="phone", actor=user.name
    )


def _anna(conn: sqlite3.Connection) -> users.User:
    return users.add_user(conn, "anna", role="user", password="a long password 1", actor="t")


def test_registration_stores_the_relying_party_and_options_ask_for_a_discoverable_key(
    conn: sqlite3.Connection,
) -> None:
    anna = _anna(conn)
    ceremony = passkeys.registration_options(conn, anna, RP)
    options = json.loads(ceremony.options)
    assert options["rp"]["id"] == "cemm.example.org"
    assert options["attestation"] == "none"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    made = passkeys.finish_registration(
        conn,
        anna.id,
        ceremony,
        SoftAuthenticator().create(ceremony.options, RP.origin),
        name="  my   phone ",
        actor="anna",
    )
    assert (made.name, made.rp_id, made.user_name, made.transports) == (
        "my phone",
        "cemm.example.org",
        "anna",
        ("internal",),
    )
    assert next(e.event for e in audit.entries(conn)) == "passkey.registered"
    again = passkeys.registration_options(conn, anna, RP)
    assert json.loads(again.options)["excludeCredentials"][0]["id"] == made.credential_id


def test_registration_for_another_origin_or_challenge_is_refused(conn: sqlite3.Connection) -> None:
    anna = _anna(conn)
    ceremony = passkeys.registration_options(conn, anna, RP)
    answer = SoftAuthenticator().create(ceremony.options, "https://evil.example")
    with pytest.raises(Invalid, match="not accepted"):
        passkeys.finish_registration(conn, anna.id, ceremony, answer, name="x", actor="anna")
    other = passkeys.registration_options(conn, anna, RP)
    answer = SoftAuthenticator().create(ceremony.options, RP.origin)
    with pytest.raises(Invalid):
        passkeys.finish_registration(conn, anna.id, other, answer, name="x", actor="anna")
    with pytest.raises(Invalid, match="name"):
        passkeys.finish_registration(conn, anna.id, ceremony, answer, name=" ", actor="anna")
    assert passkeys.list_passkeys(conn) == []


def test_a_good_assertion_logs_in_and_is_audited(conn: sqlite3.Connection) -> None:
    clock = ManualClock()
    anna, key = _anna(conn), SoftAuthenticator()
    made = _register(conn, key, anna, RP)
    ceremony = passkeys.authentication_options(conn, RP)
    assert (
        "allowCredentials" not in json.loads(ceremony.options)
        or not json.loads(ceremony.options)["allowCredentials"]
    )
    answer = key.get(ceremony.options, RP.origin)
    assert passkeys.credential_owner(conn, answer) == "anna"
    assert passkeys.check_assertion(conn, ceremony, answer, clock=clock) == anna
    used = passkeys.list_passkeys(conn, user_name="anna")[0]
    assert (used.sign_count, used.last_used_at) == (1, clock.now())
    assert "passkey.used" in {e.event for e in audit.entries(conn)}
    assert made.id == used.id


def test_a_replayed_assertion_is_refused(conn: sqlite3.Connection) -> None:
    anna, key = _anna(conn), SoftAuthenticator()
    _register(conn, key, anna, RP)
    ceremony = passkeys.authentication_options(conn, RP)
    answer = key.get(ceremony.options, RP.origin)
    assert passkeys.check_assertion(conn, ceremony, answer) == anna
    # The same answer again: its counter is no larger than the stored one.
    assert passkeys.check_assertion(conn, ceremony, answer) is None
    # The same answer to a new challenge: the signature covers the old one.
    fresh = passkeys.authentication_options(conn, RP)
    assert passkeys.check_assertion(conn, fresh, answer) is None


def test_an_assertion_for_another_relying_party_or_origin_is_refused(
    conn: sqlite3.Connection,
) -> None:
    anna, key = _anna(conn), SoftAuthenticator()
    _register(conn, key, anna, RP)
    ceremony = passkeys.authentication_options(conn, RP)
    assert (
        passkeys.check_assertion(
            conn, ceremony, key.get(ceremony.options, RP.origin, rp_id="evil.example")
        )
        is None
    )
    assert (
        passkeys.check_assertion(conn, ceremony, key.get(ceremony.options, "https://evil.example"))
        is None
    )
    # A passkey made for one of the gateway's names is not accepted under another.
    elsewhere = passkeys.authentication_options(conn, OTHER_RP)
    answer = key.get(
        {**json.loads(elsewhere.options), "rpId": RP.id}, OTHER_RP.origin, rp_id=OTHER_RP.id
    )
    assert passkeys.check_assertion(conn, elsewhere, answer) is None
    # Without user verification.
    assert (
        passkeys.check_assertion(
            conn, ceremony, key.get(ceremony.options, RP.origin, verified=False)
        )
        is None
    )


def test_a_counter_regression_is_refused_and_audited_as_a_cloned_key(
    conn: sqlite3.Connection,
) -> None:
    anna, key = _anna(conn), SoftAuthenticator()
    _register(conn, key, anna, RP)
    for _ in range(3):
        ceremony = passkeys.authentication_options(conn, RP)
        assert passkeys.check_assertion(conn, ceremony, key.get(ceremony.options, RP.origin))
    ceremony = passkeys.authentication_options(conn, RP)
    clone = key.get(ceremony.options, RP.origin, sign_count=2)
    assert passkeys.check_assertion(conn, ceremony, clone) is None
    entry = audit.entries(conn)[0]
    assert (entry.event, entry.detail["stored_count"], entry.detail["reported_count"]) == (
        "passkey.cloned",
        3,
        2,
    )
    assert passkeys.list_passkeys(conn)[0].sign_count == 3


def test_a_synced_passkey_that_never_counts_keeps_working(conn: sqlite3.Connection) -> None:
    anna, key = _anna(conn), SoftAuthenticator(count=False)
    _register(conn, key, anna, RP)
    for _ in range(2):
        ceremony = passkeys.authentication_options(conn, RP)
        assert passkeys.check_assertion(conn, ceremony, key.get(ceremony.options, RP.origin))


def test_a_disabled_account_or_another_accounts_key_is_refused(conn: sqlite3.Connection) -> None:
    anna, key = _anna(conn), SoftAuthenticator()
    bert = users.add_user(conn, "bert", role="user", password="a long password 2", actor="t")
    _register(conn, key, anna, RP)
    second = passkeys.authentication_options(conn, RP, user_id=bert.id)
    assert json.loads(second.options)["allowCredentials"] == []
    ceremony = passkeys.authentication_options(conn, RP)
    assert (
        passkeys.check_assertion(
            conn, ceremony, key.get(ceremony.options, RP.origin), user_id=bert.id
        )
        is None
    )
    users.set_disabled(conn, "anna", True, actor="t")
    ceremony = passkeys.authentication_options(conn, RP)
    assert passkeys.check_assertion(conn, ceremony, key.get(ceremony.options, RP.origin)) is None


def test_remove_one_or_reset_all_is_audited(conn: sqlite3.Connection) -> None:
    anna = _anna(conn)
    first = _register(conn, SoftAuthenticator(), anna, RP)
    _register(conn, SoftAuthenticator(), anna, RP)
    with pytest.raises(NotFound):
        passkeys.remove_passkey(conn, first.id, actor="bert", user_id=anna.id + 1)
    passkeys.remove_passkey(conn, first.id, actor="anna", user_id=anna.id)
    assert passkeys.reset_second_factor(conn, "anna", actor="admin") == 1
    assert passkeys.list_passkeys(conn) == []
    events = [e.event for e in audit.entries(conn)]
    assert events.count("passkey.removed") == 2 and "user.totp_reset" in events
    with pytest.raises(NotFound, match="passkey list"):
        passkeys.remove_passkey(conn, first.id, actor="anna")


@pytest.mark.parametrize(
    ("requirement", "role", "has", "expected"),
    [
        ("none", "admin", False, False),
        ("admins", "admin", False, True),
        ("admins", "admin", True, False),
        ("admins", "user", False, False),
        ("admins", "viewer", False, False),
        ("all", "user", False, True),
        ("all", "viewer", False, True),
        ("all", "user", True, False),
    ],
)
def test_who_must_set_up_a_second_factor(
    requirement: Requirement, role: str, has: bool, expected: bool
) -> None:
    assert must_enrol(requirement, role=role, has_second_factor=has) is expected


def test_the_dashboard_names_admins_without_a_second_factor(conn: sqlite3.Connection) -> None:
    users.add_user(conn, "root", role="admin", password="a long password 3", actor="t")
    keyed = users.add_user(conn, "keyed", role="admin", password="a long password 4", actor="t")
    users.add_user(conn, "off", role="admin", password="a long password 5", actor="t")
    users.set_disabled(conn, "off", True, actor="t")
    _anna(conn)
    _register(conn, SoftAuthenticator(), keyed, RP)
    assert passkeys.admins_without_second_factor(conn) == ["root"]
