"""What the service layer added for the admin app: the self lock-out rule, audit search and
CSV export, exact ban lifting, session lookup, and the kinds of account refusals."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest

from gateway import durations
from gateway.auth.bruteforce import BruteForcePolicy
from gateway.clock import ManualClock
from gateway.policy.allowlist import CompiledAllowlist
from gateway.services import allowlist, audit, bans, sessions, users
from gateway.services.allowlist import OwnAddress, SelfLockoutError
from gateway.store import db

DEFAULTS = ["10.0.0.0/8"]


@pytest.fixture
def conn(tmp_path: Path):
    connection = db.connect(tmp_path / "gateway.db")
    yield connection
    connection.close()


# -- admitted_until -------------------------------------------------------------------------
def test_admitted_until_prefers_the_longest_reach() -> None:
    entries = [("203.0.113.0/24", 100.0), ("203.0.113.7/32", None), ("198.51.100.0/24", 500.0)]
    assert (
        allowlist.admitted_until("203.0.113.7", default_networks=DEFAULTS, entries=entries, now=0)
        == math.inf
    )
    assert (
        allowlist.admitted_until("203.0.113.8", default_networks=DEFAULTS, entries=entries, now=0)
        == 100.0
    )
    assert (
        allowlist.admitted_until("198.51.100.1", default_networks=DEFAULTS, entries=entries, now=0)
        == 500.0
    )
    assert (
        allowlist.admitted_until("192.0.2.1", default_networks=DEFAULTS, entries=entries, now=0)
        is None
    )


def test_admitted_until_ignores_expired_entries_and_reads_mapped_addresses() -> None:
    entries = [("203.0.113.0/24", 10.0)]
    kwargs = {"default_networks": DEFAULTS, "entries": entries}
    assert allowlist.admitted_until("203.0.113.1", now=20.0, **kwargs) is None
    assert allowlist.admitted_until("::ffff:203.0.113.1", now=5.0, **kwargs) == 10.0
    assert allowlist.admitted_until("10.1.2.3", now=5.0, **kwargs) == math.inf
    assert allowlist.admitted_until("not an address", now=5.0, **kwargs) is None


# -- the self lock-out rule -------------------------------------------------------------------
def test_removing_the_only_entry_admitting_me_is_refused_unless_confirmed(conn) -> None:
    allowlist.save_entry(conn, "203.0.113.0/24", actor="anna")
    me = OwnAddress("203.0.113.7", DEFAULTS)
    with pytest.raises(SelfLockoutError, match=r"203\.0\.113\.7 could no longer reach") as refused:
        allowlist.remove_entry(conn, "203.0.113.0/24", actor="anna", own_address=me)
    assert refused.value.admitted_until is None
    assert [e.network for e in allowlist.list_entries(conn)] == ["203.0.113.0/24"]
    assert audit.search(conn, event="allowlist.remove") == []

    confirmed = OwnAddress("203.0.113.7", DEFAULTS, confirmed=True)
    allowlist.remove_entry(conn, "203.0.113.0/24", actor="anna", own_address=confirmed)
    assert allowlist.list_entries(conn) == []
    (entry,) = audit.search(conn, event="allowlist.remove")
    assert entry.detail["own_address_cut_off"] == "203.0.113.7"


def test_removal_is_fine_when_something_else_admits_me(conn) -> None:
    allowlist.save_entry(conn, "203.0.113.0/24", actor="anna")
    allowlist.save_entry(conn, "203.0.113.7", actor="anna")
    me = OwnAddress("203.0.113.7", DEFAULTS)
    allowlist.remove_entry(conn, "203.0.113.0/24", actor="anna", own_address=me)
    # Someone else's entry, and an address inside the defaults, are never a lock-out.
    allowlist.save_entry(conn, "198.51.100.0/24", actor="anna")
    allowlist.remove_entry(conn, "198.51.100.0/24", actor="anna", own_address=me)
    allowlist.remove_entry(
        conn, "203.0.113.7/32", actor="anna", own_address=OwnAddress("10.9.9.9", DEFAULTS)
    )
    assert allowlist.list_entries(conn) == []


def test_shortening_the_expiry_of_my_entry_is_a_lockout_too(conn) -> None:
    clock = ManualClock()
    allowlist.save_entry(conn, "203.0.113.0/24", actor="anna", clock=clock)
    me = OwnAddress("203.0.113.7", DEFAULTS)
    with pytest.raises(SelfLockoutError, match="admitted only until") as refused:
        allowlist.save_entry(
            conn, "203.0.113.0/24", actor="anna", expires_in=3600, own_address=me, clock=clock
        )
    assert refused.value.admitted_until == clock.now() + 3600
    # Making it longer, or adding an entry that expires, never is.
    allowlist.save_entry(
        conn, "203.0.113.7", actor="anna", expires_in=60, own_address=me, clock=clock
    )
    assert allowlist.get_entry(conn, 999) is None


def test_saving_a_listed_network_updates_it_and_the_audit_log_says_so(conn) -> None:
    clock = ManualClock(1_000.0)
    added = allowlist.save_entry(conn, "203.0.113.0/24", actor="anna", label="a", clock=clock)
    assert added.previous is None
    clock.advance(60)
    updated = allowlist.save_entry(
        conn, "203.0.113.0/24", actor="bert", label="b", expires_in=3600, clock=clock
    )
    assert updated.previous == added.entry
    assert (updated.entry.id, updated.entry.label, updated.entry.expires_at) == (
        added.entry.id,
        "b",
        clock.now() + 3600,
    )
    # Who added the entry, and when, stay; who changed it is in the audit log.
    assert (updated.entry.created_by, updated.entry.created_at) == ("anna", 1_000.0)
    (update,) = audit.search(conn, event="allowlist.update")
    assert update.actor == "bert"
    assert update.detail == {
        "network": "203.0.113.0/24",
        "label": "b",
        "expires_at": clock.now() + 3600,
        "previous_label": "a",
        "previous_expires_at": None,
    }
    (add,) = audit.search(conn, event="allowlist.add")
    assert add.detail == {"network": "203.0.113.0/24", "label": "a", "expires_at": None}
    # Saving the same values again is recorded too.
    allowlist.save_entry(conn, "203.0.113.0/24", actor="anna", label="c", clock=clock)
    assert [e.event for e in audit.search(conn, event="allowlist")] == [
        "allowlist.update",
        "allowlist.update",
        "allowlist.add",
    ]


def test_labels_with_control_characters_are_refused(conn) -> None:
    with pytest.raises(allowlist.AllowlistError, match="control characters"):
        allowlist.save_entry(conn, "203.0.113.0/24", actor="anna", label="a\x1b[31mb")


def test_parse_expiry() -> None:
    assert durations.parse_expiry("never") is None
    assert durations.parse_expiry("") is None
    assert durations.parse_expiry("7d") == 7 * 86400
    assert set(allowlist.EXPIRY_CHOICES) == {"never", "1h", "1d", "7d", "30d"}
    with pytest.raises(durations.DurationError, match="not a duration"):
        durations.parse_expiry("soon")


# -- audit search and export ----------------------------------------------------------------
def test_audit_search_by_user_event_and_time(conn) -> None:
    clock = ManualClock(1_000.0)
    audit.record(conn, "anna", "user.add", clock=clock, user="bob")
    clock.advance(10)
    audit.record(conn, "bob", "login", clock=clock)
    clock.advance(10)
    audit.record(conn, "anna", "allowlist.add", clock=clock, network="203.0.113.0/24")
    clock.advance(10)
    audit.record(conn, "Bob", "login.failure", clock=clock)

    def events(**filters: object) -> list[str]:
        return [entry.event for entry in audit.search(conn, **filters)]  # type: ignore[arg-type]

    assert events(user="bob") == ["login.failure", "login", "user.add"]
    assert events(user="anna") == ["allowlist.add", "user.add"]
    assert events(event="login") == ["login.failure", "login"]
    assert events(event="login.failure") == ["login.failure"]
    assert events(event="user") == ["user.add"]
    assert events(event="log") == []
    assert events(since=1_010.0, until=1_030.0) == ["allowlist.add", "login"]
    assert events(user="bob", event="login", limit=1) == ["login.failure"]
    assert audit.event_names(conn) == ["allowlist.add", "login", "login.failure", "user.add"]


def test_audit_csv_is_safe_to_open_in_a_spreadsheet(conn) -> None:
    audit.record(conn, "=HYPERLINK(1)", "login.failure", user_agent="+cmd", client_address="::1")
    audit.record(conn, "anna", "user.add", user="bob")
    rows = list(csv.reader(io.StringIO(audit.as_csv(audit.search(conn)))))
    assert rows[0] == list(audit.CSV_COLUMNS)
    assert rows[1][1:3] == ["anna", "user.add"]
    assert rows[1][5] == '{"user": "bob"}'
    assert rows[2][1] == "'=HYPERLINK(1)"
    assert rows[2][4] == "'+cmd"
    assert rows[2][0].endswith("+00:00")


# -- bans, sessions, users ------------------------------------------------------------------
def test_lift_ban_lifts_exactly_that_id(conn) -> None:
    # ``lift("5")`` would also match a user named 5; the admin app's button must not.
    policy = BruteForcePolicy(window=900, free_attempts=0, max_delay=0, ban_after=1)
    for name in ("5", "carol"):
        bans.record_failure(
            conn, [f"user:{name}"], policy, client_address=None, user_agent=None, user_name=name
        )
    active = bans.list_bans(conn, now=0)
    assert {ban.subject for ban in active} == {"user:5", "user:carol"}
    carol = next(ban for ban in active if ban.subject == "user:carol")
    lifted = bans.lift_ban(conn, carol.id, actor="anna", client_address="192.0.2.1")
    assert lifted.subject == "user:carol"
    assert [ban.subject for ban in bans.list_bans(conn, now=0)] == ["user:5"]
    (entry,) = audit.search(conn, event="ban.lift")
    assert entry.client_address == "192.0.2.1"
    with pytest.raises(bans.BanError, match="no active ban"):
        bans.lift_ban(conn, carol.id, actor="anna")


def test_get_session_by_id(conn) -> None:
    anna = users.add_user(conn, "anna", role="admin", password="a long password 1", actor="t")
    _, info = sessions.create_session(
        conn, anna, lifetime=3600, client_address="192.0.2.1", user_agent="ua", method="password"
    )
    now = info.created_at + 1
    assert sessions.get_session(conn, info.id, now=now, idle_timeout=600) == info
    assert sessions.get_session(conn, info.id, now=now + 601, idle_timeout=600) is None
    sessions.revoke_session(conn, info.id, actor="t", reason="revoked")
    assert sessions.get_session(conn, info.id, now=now, idle_timeout=600) is None


def test_account_refusals_have_their_own_kinds(conn) -> None:
    users.add_user(conn, "anna", role="admin", password="a long password 1", actor="t")
    with pytest.raises(users.UserExistsError):
        users.add_user(conn, "ANNA", role="user", password="a long password 2", actor="t")
    for change in (
        lambda: users.set_role(conn, "anna", "user", actor="t"),
        lambda: users.set_disabled(conn, "anna", True, actor="t"),
        lambda: users.remove_user(conn, "anna", actor="t"),
    ):
        with pytest.raises(users.LastAdminError):
            change()
    users.set_role(conn, "anna", "admin", actor="t", client_address="192.0.2.9")
    assert audit.search(conn, event="user.role")[0].client_address == "192.0.2.9"


def test_nobody_disables_demotes_or_removes_their_own_account(conn) -> None:
    users.add_user(conn, "anna", role="admin", password="a long password 1", actor="t")
    users.add_user(conn, "bert", role="admin", password="a long password 2", actor="t")
    for change in (
        lambda: users.set_role(conn, "anna", "user", actor="Anna"),
        lambda: users.set_disabled(conn, "anna", True, actor="anna"),
        lambda: users.remove_user(conn, "anna", actor="anna"),
    ):
        with pytest.raises(users.OwnAccountError, match="another admin can"):
            change()
    users.set_disabled(conn, "anna", False, actor="anna")  # enabling is no danger
    users.set_role(conn, "anna", "user", actor="bert")
    users.remove_user(conn, "anna", actor="cli:root")


# -- first start ------------------------------------------------------------------------------
def test_first_start_makes_an_admin_on_an_empty_database(conn) -> None:
    generated = users.ensure_initial_admin(conn, "admin", None)
    assert generated and users.authenticate(conn, "admin", generated) is not None
    assert users.get_user(conn, "admin").role == "admin"
    # Later starts leave the accounts alone.
    assert users.ensure_initial_admin(conn, "admin", None) is None
    assert users.ensure_initial_admin(conn, "other", "a long password 9") is None
    assert users.get_user(conn, "other") is None


def test_first_start_makes_an_admin_when_only_users_were_added_before(conn) -> None:
    users.add_user(conn, "bob", role="user", password="a long password 1", actor="cli")
    assert users.ensure_initial_admin(conn, "admin", "a long password 2") is None
    assert users.get_user(conn, "admin").role == "admin"
    assert users.get_user(conn, "bob").role == "user"


def test_first_start_does_not_promote_a_user_account_of_the_admins_name(conn) -> None:
    users.add_user(conn, "admin", role="user", password="a long password 1", actor="cli")
    with pytest.raises(users.UserExistsError, match="user role admin admin"):
        users.ensure_initial_admin(conn, "admin", None)
    assert users.get_user(conn, "admin").role == "user"


def test_failures_from_never_ban_addresses_count_against_the_account_only() -> None:
    never_ban = CompiledAllowlist.from_networks(["192.168.0.0/16", "fd00::/8"])
    assert bans.subjects("Anna", "192.168.2.7", never_ban) == ["user:anna"]
    assert bans.subjects("Anna", "fd00::7", never_ban) == ["user:anna"]
    assert bans.subjects("Anna", "203.0.113.9", never_ban) == [
        "user:anna",
        "address:203.0.113.9",
    ]
