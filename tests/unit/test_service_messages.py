"""A service's refusal is English for the CLI and the JSON API and in the reader's language
on a page: :class:`gateway.services.errors.ServiceError` carries the message's template and
parameters (:class:`gateway.i18n.Message`); ``.message`` is the English text, byte for
byte what it was, ``.translated()`` the same in the language of the request."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway import i18n
from gateway.auth import passwords
from gateway.clock import ManualClock
from gateway.i18n import N_, Message
from gateway.notify.message import Notice, compose
from gateway.notify.sources import AuditSource
from gateway.policy.allowlist import AllowlistEntryError, parse_network
from gateway.services import allowlist, audit, peers, users
from gateway.services.allowlist import SelfLockoutError
from gateway.services.errors import Invalid, NotFound, ServiceError
from gateway.store import db
from gateway.store.db import transaction
from tests.unit.test_notify import POLICY


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return db.connect(tmp_path / "gateway.db")


def test_a_converted_refusal_is_english_as_before_and_dutch_on_request(
    conn: sqlite3.Connection,
) -> None:
    with pytest.raises(peers.PeerNotFound) as caught:
        peers.get_peer(conn, "anna phone")
    error = caught.value
    english = "there is no peer 'anna phone'; 'cemm-gateway peer list' shows them"
    assert error.message == str(error) == english
    assert error.translated() == english  # outside a request: English
    with i18n.use_language("nl"):
        assert error.message == english  # what the CLI and the API show stays English
        assert error.translated() == (
            "er is geen VPN-apparaat 'anna phone'; 'cemm-gateway peer list' toont ze"
        )


def test_a_user_name_and_the_password_policy_in_dutch(conn: sqlite3.Connection) -> None:
    with pytest.raises(users.UserInvalid) as bad_name:
        users.add_user(conn, "-anna", role="admin", password="x", actor="cli:root")
    assert bad_name.value.message == (
        "user name '-anna' is not allowed; use 1-64 letters, digits, '.', '_', '-' or '@', "
        "starting with a letter or digit, for example anna"
    )
    with pytest.raises(users.UserInvalid) as short:
        users.add_user(conn, "anna", role="admin", password="short", actor="cli:root")
    assert short.value.field == "password"
    assert short.value.message == (
        "password is too short: 5 characters, at least 10 are needed; a few unrelated words "
        "make a long password that is easy to remember"
    )
    with i18n.use_language("nl"):
        assert bad_name.value.translated().startswith("gebruikersnaam '-anna' is niet toegestaan")
        assert short.value.translated().startswith(
            "het wachtwoord is te kort: 5 tekens, er zijn er minstens 10 nodig"
        )


def test_a_message_inside_a_message_is_translated_along() -> None:
    with pytest.raises(AllowlistEntryError) as caught:
        parse_network("abc")
    assert str(caught.value) == (
        "allowlist entry 'abc' is not an IPv4 or IPv6 network; example: 192.168.1.0/24"
    )
    with i18n.use_language("nl"):
        assert caught.value.text.translated() == (
            "regel 'abc' voor de toegangslijst is geen IPv4- of IPv6-netwerk; "
            "voorbeeld: 192.168.1.0/24"
        )
    wide = allowlist.WideNetworkError(
        Message(
            N_(
                "{network} is every IPv{version} address: anyone on the internet who can "
                "reach the gateway could connect to it and try to log in; only a password "
                "(and second factor) would stand between them and the CEMM"
            ),
            network="0.0.0.0/0",
            version=4,
        ),
        network="0.0.0.0/0",
    )
    assert wide.message.endswith(
        "and the CEMM. Confirm to add it anyway (API: confirm_wide; CLI: --yes)."
    )
    assert wide.warning.startswith("0.0.0.0/0 is every IPv4 address")
    with i18n.use_language("nl"):
        assert wide.warning_text.translated().startswith("0.0.0.0/0 is elk IPv4-adres")
        assert "Bevestig om de regel toch toe te voegen" in wide.translated()


def test_call_sites_not_converted_keep_working() -> None:
    """A plain string (an f-string already filled in) is taken as it is, braces and all."""
    plain = Invalid("nothing {here} is a placeholder", field="x")
    assert plain.message == plain.translated() == "nothing {here} is a placeholder"
    assert plain.field == "x"
    lockout = SelfLockoutError("cut off", address="192.0.2.1", admitted_until=None)
    assert lockout.message == "cut off"
    assert lockout.extra() == {"address": "192.0.2.1", "admitted_until": None}
    marked = NotFound(N_("Account disabled."))
    with i18n.use_language("nl"):
        assert marked.translated() == "Account uitgeschakeld."
    assert isinstance(marked, ServiceError | ValueError)


def test_password_policy_errors_carry_their_text() -> None:
    with pytest.raises(passwords.PasswordPolicyError) as caught:
        passwords.check_password_policy("anna-anna-anna-anna", username="anna")
    assert str(caught.value) == "password must not contain the user name; choose one without it"
    with i18n.use_language("nl"):
        assert caught.value.text.translated() == (
            "het wachtwoord mag de gebruikersnaam niet bevatten; kies een wachtwoord zonder"
        )


def test_a_failure_bursts_window_is_said_in_the_homes_language(
    conn: sqlite3.Connection,
) -> None:
    """The source passes the window in seconds; the message says it in its language."""
    notice = Notice(
        "login.failure_burst",
        0.0,
        "anna",
        "192.0.2.7",
        {"subject": "address 192.0.2.7", "count": 4, "window": 7500.0},
    )
    english = compose(notice, link=str).body
    dutch = compose(notice, link=str, language="nl").body
    assert english.startswith("4 failed logins for address 192.0.2.7 within 2 h 5 min.")
    assert dutch.startswith("4 mislukte inlogpogingen voor adres 192.0.2.7 binnen 2 u 5 min.")
    # The source itself hands over seconds (not text made in the language of nobody).
    got: list[Notice] = []
    source = AuditSource(conn, POLICY, got.append)
    with transaction(conn):
        for n in range(POLICY.free_attempts + 1):
            audit.record(
                conn,
                "anna",
                "login.failure",
                client_address="192.0.2.7",
                clock=ManualClock(5000.0 + n),
            )
    while source.poll(now=1e12):
        pass
    burst = next(n for n in got if n.event == "login.failure_burst")
    assert burst.detail["window"] == POLICY.window
