"""Notifications: messages, masking, folding, bounds, retries, and notices from the audit log."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.auth.bruteforce import BruteForcePolicy
from gateway.clock import ManualClock
from gateway.notify.delivery import Notifier
from gateway.notify.events import EVENTS
from gateway.notify.message import Message, Notice, compose, mask
from gateway.notify.sources import AuditSource
from gateway.services import audit, devices, guests, users
from gateway.settings import Settings
from gateway.store import db
from gateway.store.db import transaction
from gateway.tasks.cemm_outage import OutageWatch


def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_message_says_who_what_where_when_and_links() -> None:
    notice = Notice("user.add", 0.0, "alice", "192.0.2.7", {"user": "bob", "role": "viewer"})
    message = compose(notice, link=lambda path: f"https://gw:8443{path}")
    assert message.title == "New user"
    assert "alice added the user bob (viewer)." in message.body
    assert "1970-01-01 00:00:00 UTC" in message.body
    assert "From: 192.0.2.7" in message.body
    assert message.body.endswith("https://gw:8443/users")


def test_folded_message_has_the_count_and_a_missing_detail_reads_as_a_question_mark() -> None:
    message = compose(Notice("ban", 0.0), count=7, last_at=60.0, link=str)
    assert message.title == "Banned (7 times)"
    assert "? is banned until ?." in message.body
    assert "7 times, from 1970-01-01 00:00:00 UTC to 1970-01-01 00:01:00 UTC." in message.body


def test_a_failed_backup_says_why() -> None:
    # The backup task audits the reason as ``reason`` (gateway/tasks/backup.py).
    message = compose(Notice("backup.failed", 0.0, detail={"reason": "disk full"}), link=str)
    assert message.body.splitlines()[0] == "A backup failed: disk full"


def test_every_event_composes() -> None:
    for name in EVENTS:
        assert compose(Notice(name, 0.0), link=str).title


def test_masked_url_shows_only_the_scheme() -> None:
    assert mask("tgram://123456:ABCDEF/987") == "tgram://•••"
    assert "secret" not in mask("json://user:secret@host/path")


def test_unknown_event_in_settings_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown event"):
        Settings(notify={"events": ["login.nope"]})  # type: ignore[arg-type]


class Receiver:
    def __init__(self, *, fail: int = 0, hang: threading.Event | None = None) -> None:
        self.messages: list[Message] = []
        self.fail = fail
        self.hang = hang
        self.calls = 0

    def __call__(self, message: Message) -> bool:
        self.calls += 1
        if self.hang is not None:
            self.hang.wait()
        if self.fail > 0:
            self.fail -= 1
            return False
        self.messages.append(message)
        return True


def test_a_flood_of_one_kind_is_folded_into_a_handful() -> None:
    receiver = Receiver()
    notifier = Notifier(receiver, fold_period=0.3)
    notifier.start()
    try:
        for n in range(1000):
            notifier.notify(Notice("ban", float(n), detail={"subject": f"address {n}"}))
            if n % 100 == 0:
                time.sleep(0.05)
        wait_for(lambda: notifier.status().pending == 0 and notifier.sent >= 2)
        time.sleep(0.4)
    finally:
        notifier.stop()
    assert 2 <= len(receiver.messages) <= 6
    counted = sum(
        int(m.title.split("(")[1].split()[0]) if "(" in m.title else 1 for m in receiver.messages
    )
    assert counted == 1000


def test_events_not_chosen_are_not_sent() -> None:
    receiver = Receiver()
    notifier = Notifier(receiver, events=["ban"])
    notifier.notify(Notice("user.add", 0.0))
    assert notifier.status().pending == 0


def test_a_hanging_receiver_leaves_memory_bounded_and_notify_fast() -> None:
    release = threading.Event()
    notifier = Notifier(Receiver(hang=release), max_pending=50)
    notifier.start()
    try:
        began = time.monotonic()
        for n in range(20_000):
            notifier.notify(Notice("ban", 0.0, key=f"k{n}"))
        assert time.monotonic() - began < 2.0
        status = notifier.status()
        assert status.pending <= 50
        assert status.dropped >= 20_000 - 51
    finally:
        release.set()
        notifier.stop()


def test_failures_are_retried_with_backoff_then_counted() -> None:
    receiver = Receiver(fail=2)
    notifier = Notifier(receiver, backoff=(0.05, 0.05, 0.05), receivers=["json://u:pw@h/"])
    notifier.start()
    try:
        notifier.notify(Notice("ban", 0.0))
        wait_for(lambda: notifier.sent == 1)
        assert receiver.calls == 3
        receiver.fail = 10
        notifier.notify(Notice("user.add", 0.0))
        wait_for(lambda: notifier.failed == 1)
    finally:
        notifier.stop()
    status = notifier.status()
    assert status.last_failure is not None and "user.add" in status.last_failure
    assert status.receivers == ("json://•••",)


def test_a_raising_sender_does_not_end_the_worker() -> None:
    calls: list[Message] = []

    def send(message: Message) -> bool:
        calls.append(message)
        if len(calls) == 1:
            raise RuntimeError("plugin bug")
        return True

    notifier = Notifier(send, backoff=(0.01,))
    notifier.start()
    try:
        notifier.notify(Notice("ban", 0.0))
        wait_for(lambda: notifier.sent == 1)
    finally:
        notifier.stop()


# -- the audit log as a source ---------------------------------------------------------
POLICY = BruteForcePolicy(window=900.0, free_attempts=3, ban_after=10)


@pytest.fixture
def conn(tmp_path: Path):  # type: ignore[no-untyped-def]
    connection = db.connect(tmp_path / "gateway.db")
    users.add_user(connection, "alice", role="admin", password="a long passphrase", actor="test")
    return connection


def login(conn, address: str, at: float, *, device: str | None = None) -> None:  # type: ignore[no-untyped-def]
    with transaction(conn):
        audit.record(conn, "alice", "login", client_address=address, clock=ManualClock(at))
    if device is not None:
        user = users.require_user(conn, "alice")
        devices.remember_device(conn, device, user.id, clock=ManualClock(at))


def test_audit_entries_become_notices_and_logins_are_checked(conn) -> None:  # type: ignore[no-untyped-def]
    got: list[Notice] = []
    source = AuditSource(conn, POLICY, got.append)
    login(conn, "192.0.2.1", 1000.0, device="phone-token")  # the first login: nothing new
    login(conn, "192.0.2.1", 2000.0, device="phone-token")
    login(conn, "198.51.100.9", 3000.0, device="phone-token")  # a new address
    login(conn, "198.51.100.9", 4000.0, device="laptop-token")  # a new device
    login(conn, "192.0.2.1", 4000.0 + 91 * 86400)  # not seen for 91 days
    source.poll(now=1e12)
    derived = [(n.event, n.address) for n in got if n.event.startswith("login.")]
    assert derived == [
        ("login.new_address", "198.51.100.9"),
        ("login.new_device", "198.51.100.9"),
        ("login.new_address", "192.0.2.1"),
    ]
    assert [n.event for n in got].count("login") == 5


def test_a_fresh_entry_waits_a_moment_so_the_device_is_remembered(conn) -> None:  # type: ignore[no-untyped-def]
    got: list[Notice] = []
    source = AuditSource(conn, POLICY, got.append)
    login(conn, "192.0.2.1", 1000.0)
    assert source.poll(now=1000.5) == 0
    assert source.poll(now=1002.0) == 1


def test_a_flood_of_failed_logins_is_one_burst_per_account_and_address(conn) -> None:  # type: ignore[no-untyped-def]
    got: list[Notice] = []
    source = AuditSource(conn, POLICY, got.append)
    with transaction(conn):
        for n in range(1000):
            audit.record(
                conn,
                "alice",
                "login.failure",
                client_address="203.0.113.5",
                clock=ManualClock(5000.0 + n * 0.1),
            )
    while source.poll(now=1e12):
        pass
    bursts = [n for n in got if n.event == "login.failure_burst"]
    assert [n.detail["subject"] for n in bursts] == ["account alice", "address 203.0.113.5"]
    assert bursts[0].detail["count"] == POLICY.free_attempts + 1
    # After a quiet window, a new burst is news again.
    with transaction(conn):
        for n in range(5):
            audit.record(conn, "alice", "login.failure", clock=ManualClock(5000.0 + 2000 + n))
    source.poll(now=1e12)
    assert len([n for n in got if n.event == "login.failure_burst"]) == 3


class FakeMonitor:
    def __init__(self) -> None:
        self.health = SimpleNamespace(
            http=SimpleNamespace(up=True, error=None), unavailable_text=lambda: "not found"
        )


def test_cemm_outage_is_told_after_the_delay_and_the_recovery_once() -> None:
    monitor, now = FakeMonitor(), [0.0]
    got: list[Notice] = []
    watch = OutageWatch(monitor, got.append, down_after=120, clock=lambda: now[0])  # type: ignore[arg-type]
    watch.check()
    monitor.health.http.up, monitor.health.http.error = False, "connection refused"
    for now[0] in (10.0, 60.0, 100.0):
        watch.check()
    assert got == []
    for now[0] in (130.0, 140.0):
        watch.check()
    assert [n.event for n in got] == ["upstream.down"]
    assert got[0].detail["error"] == "connection refused"
    monitor.health.http.up = True
    now[0] = 200.0
    watch.check()
    watch.check()
    assert [n.event for n in got] == ["upstream.down", "upstream.up"]
    assert got[1].detail["duration"] == "3 min"


# -- the VPN and certificate watches -------------------------------------------------------
def test_vpn_first_handshake_and_new_address(conn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from gateway.services import peers
    from gateway.settings import WireguardSettings
    from gateway.tasks.notify_watches import VpnWatch
    from gateway.wireguard.config import PeerStats
    from gateway.wireguard.keys import KeyVault

    key = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
    settings = WireguardSettings(enabled=True, endpoint="vpn.example.net:51820")
    vault = KeyVault(tmp_path)
    peers.add_peer(conn, "phone", settings=settings, vault=vault, actor="test", public_key=key)
    manager = SimpleNamespace(stats={})
    got: list[Notice] = []
    now = [1000.0]
    watch = VpnWatch(manager, conn, got.append, clock=lambda: now[0])  # type: ignore[arg-type]
    watch.check()
    assert got == []
    peers.record_handshakes(conn, {key: 1001.0})
    manager.stats = {key: PeerStats(key, "192.0.2.1:51820", 1001.0, 0, 0)}
    watch.check()
    watch.check()
    assert [(n.event, n.detail["peer"]) for n in got] == [("peer.first_handshake", "phone")]
    manager.stats = {key: PeerStats(key, "192.0.2.1:40000", 1002.0, 0, 0)}  # a new port only
    watch.check()
    manager.stats = {key: PeerStats(key, "198.51.100.4:40000", 1003.0, 0, 0)}
    watch.check()
    assert [(n.event, n.address) for n in got][1:] == [("peer.new_endpoint", "198.51.100.4")]


def test_certificate_close_to_expiry_is_told_once_a_day(tmp_path: Path) -> None:
    from gateway.tasks.notify_watches import CertificateWatch, expires_at
    from gateway.tls.certificates import make_self_signed

    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    make_self_signed(cert, key, hostnames=["gw"], addresses=[])
    expiry = expires_at(cert)
    now = [expiry - 30 * 86400]
    got: list[Notice] = []
    watch = CertificateWatch(cert, got.append, clock=lambda: now[0])
    watch.check()
    assert got == []
    now[0] = expiry - 10 * 86400
    watch.check()
    watch.check()
    now[0] += 86400
    watch.check()
    assert [n.event for n in got] == ["certificate.expiring"] * 2


def test_the_first_use_of_a_guest_link_is_told_once_with_who_and_where(conn) -> None:  # type: ignore[no-untyped-def]
    got: list[Notice] = []
    source = AuditSource(conn, POLICY, got.append)
    token, _link = guests.create_link(
        conn, "installer Jan", role="viewer", expires_at=9e9, browsers=2, actor="alice"
    )
    for address in ("192.0.2.30", "192.0.2.31"):
        guests.open_session(
            conn, token, guest_name="Jan", client_address=address, user_agent="phone"
        )
    source.poll(now=1e12)
    first = [n for n in got if n.event == "guest.first_use"]
    assert len(first) == 1 and first[0].address == "192.0.2.30"
    message = compose(first[0], link=lambda path: f"https://gw:8443{path}")
    assert message.title == "Guest link used"
    assert "guest:Jan opened the guest link 'installer Jan' (viewer) from 192.0.2.30." in (
        message.body
    )
    assert message.body.endswith("https://gw:8443/guests")
