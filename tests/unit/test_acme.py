"""ACME without a CA: the settings and their cross-key rules, the files and their modes,
when a certificate is due, the retry backoff, and the challenge board."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.acme import manager as manager_module
from gateway.acme.board import ChallengeBoard
from gateway.acme.manager import RETRY_FIRST, RETRY_MAX, AcmeManager
from gateway.acme.storage import AcmeStorage, Attempt, renewal_due
from gateway.settings import Settings, SettingsError, check_acme
from gateway.settings.acme import LETS_ENCRYPT, LETS_ENCRYPT_STAGING, AcmeSettings
from gateway.tls.certificates import make_self_signed


def settings(**sections: Any) -> Settings:
    return Settings(upstream={"host": "192.168.2.34"}, **sections)


GOOD = {"enabled": True, "domains": ["cemm.example.org"]}


@pytest.mark.parametrize(
    ("tls", "acme", "message"),
    [
        ({}, GOOD, r"needs \[tls\] enabled = true"),
        ({"enabled": True, "cert": "/c", "key": "/k"}, GOOD, "both give the certificate"),
        ({"enabled": True, "cert": "/c"}, GOOD, "both give the certificate"),
        ({"enabled": True}, {"enabled": True}, "needs domains"),
        (
            {"enabled": True},
            {"enabled": True, "domains": ["*.example.org"]},
            'wildcard name needs challenge = "dns-01"',
        ),
        ({"enabled": True}, {**GOOD, "challenge": "dns-01"}, "needs dns_hook"),
    ],
)
def test_inconsistent_settings_are_refused(
    tls: dict[str, Any], acme: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        check_acme(settings(tls=tls, acme=acme))


@pytest.mark.parametrize(
    "acme",
    [
        {},
        {"enabled": False, "domains": []},
        GOOD,
        {**GOOD, "challenge": "dns-01", "dns_hook": "/data/hook"},
        {"enabled": True, "domains": ["*.example.org"], "challenge": "dns-01", "dns_hook": "/h"},
    ],
)
def test_consistent_settings_pass(acme: dict[str, Any]) -> None:
    check_acme(settings(tls={"enabled": True}, acme=acme))


def test_directory_defaults_to_lets_encrypt() -> None:
    assert AcmeSettings().directory == LETS_ENCRYPT
    assert AcmeSettings(staging=True).directory == LETS_ENCRYPT_STAGING
    assert AcmeSettings(directory_url="https://ca.lan/dir").directory == "https://ca.lan/dir"
    with pytest.raises(ValidationError, match="https://"):
        AcmeSettings(directory_url="http://ca.lan/dir")


@pytest.mark.parametrize(
    "name", ["localhost.", "-x.example.org", "x..org", "192.168.1.1", "exa mple.org", "a/b.org"]
)
def test_bad_domains_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="not a DNS name"):
        AcmeSettings(domains=[name])


def test_domains_are_normalised() -> None:
    assert AcmeSettings(domains=["CEMM.Example.org.", "cemm.example.org"]).domains == [
        "cemm.example.org"
    ]


def test_storage_modes(tmp_path: Path) -> None:
    storage = AcmeStorage(tmp_path)
    storage.account_key_pem()
    storage.install(b"key", b"chain")
    storage.record(Attempt(1.0, False, "why"))
    assert storage.directory.stat().st_mode & 0o777 == 0o700
    assert storage.account_key.stat().st_mode & 0o777 == 0o600
    assert storage.key.stat().st_mode & 0o777 == 0o600
    assert storage.last_attempt() == Attempt(1.0, False, "why")
    assert not list(storage.directory.glob("*.tmp"))


def test_account_key_is_made_once(tmp_path: Path) -> None:
    storage = AcmeStorage(tmp_path)
    assert storage.account_key_pem() == storage.account_key_pem()


def test_renewal_request_is_consumed(tmp_path: Path) -> None:
    storage = AcmeStorage(tmp_path)
    assert not storage.take_renewal_request()
    storage.request_renewal()
    assert storage.take_renewal_request()
    assert not storage.take_renewal_request()


def _manager(tmp_path: Path, domains: list[str] | None = None) -> AcmeManager:
    acme = AcmeSettings(enabled=True, domains=domains or ["cemm.example.org"])
    return AcmeManager(acme, AcmeStorage(tmp_path))


def test_stand_in_is_due_at_once(tmp_path: Path) -> None:
    manager = _manager(tmp_path)
    manager.ensure_standin()
    status = manager.status()
    assert not status.issued and status.names == ("cemm.example.org",)
    assert manager.due(dt.datetime.now(dt.UTC))
    assert manager.next_wait(dt.datetime.now(dt.UTC)) == 0.0


def test_stand_in_is_kept_when_a_certificate_exists(tmp_path: Path) -> None:
    manager = _manager(tmp_path)
    manager.ensure_standin()
    first = manager.storage.cert.read_bytes()
    manager.ensure_standin()
    assert manager.storage.cert.read_bytes() == first


def test_renewal_at_two_thirds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manager = _manager(tmp_path)
    manager.ensure_standin()
    certificate = manager.storage.certificate()
    assert certificate is not None
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    assert renewal_due(certificate) == start + (end - start) * 2 / 3
    monkeypatch.setattr(manager.storage, "issued", lambda: True)
    due = renewal_due(certificate)
    assert not manager.due(due - dt.timedelta(seconds=1))
    assert manager.due(due)


def test_missing_domain_makes_it_due(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manager = _manager(tmp_path, ["cemm.example.org", "other.example.org"])
    make_self_signed(
        manager.storage.cert, manager.storage.key, hostnames=["cemm.example.org"], addresses=[]
    )
    monkeypatch.setattr(manager.storage, "issued", lambda: True)
    assert manager.due(dt.datetime.now(dt.UTC))


def test_backoff_doubles_up_to_the_limit(tmp_path: Path) -> None:
    manager = _manager(tmp_path)
    now = dt.datetime.now(dt.UTC)
    waits = []
    for failures in range(1, 12):
        manager._failures = failures
        waits.append(manager.next_wait(now))
    assert waits[0] == RETRY_FIRST and waits[1] == 2 * RETRY_FIRST
    assert max(waits) == RETRY_MAX == waits[-1]


def test_failed_order_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.acme.client import AcmeError

    def fail(*_: Any) -> None:
        raise AcmeError("the authority refused: rate limited")

    monkeypatch.setattr(manager_module, "order_certificate", fail)
    manager = _manager(tmp_path)
    with pytest.raises(AcmeError):
        asyncio.run(manager.renew())
    attempt = manager.status().last_attempt
    assert attempt is not None and not attempt.ok
    assert attempt.error == "the authority refused: rate limited"


def test_failed_order_is_audited_with_tokens_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.acme.client import AcmeError

    token = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
    thumbprint = "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
    said = (
        "the authority could not validate cemm.example.org: The key authorization file from"
        f' the server did not match this challenge. Expected "{token}.{thumbprint}" (got'
        f' "nope") at http://cemm.example.org/.well-known/acme-challenge/{token}'
    )

    def fail(*_: Any) -> None:
        raise AcmeError(said)

    monkeypatch.setattr(manager_module, "order_certificate", fail)
    manager = _manager(tmp_path, ["cemm.example.org", "www.example.org"])
    audited: list[tuple[str, str, dict[str, Any]]] = []
    manager.record_audit = lambda actor, event, **detail: audited.append((actor, event, detail))
    with pytest.raises(AcmeError):
        asyncio.run(manager.renew())
    [(actor, event, detail)] = audited
    assert (actor, event) == ("system", "certificate.renewal_failed")
    assert detail["domains"] == "cemm.example.org, www.example.org"
    error = detail["error"]
    assert error.startswith("the authority could not validate cemm.example.org: The key")
    assert token not in error and thumbprint not in error
    assert f'Expected "{token[:8]}[redacted]"' in error
    assert f"/.well-known/acme-challenge/{token[:8]}[redacted]" in error
    attempt = manager.status().last_attempt
    assert attempt is not None and attempt.error == error


def test_an_unexpected_failure_is_audited_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.acme.client import AcmeError

    def crash(*_: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(manager_module, "order_certificate", crash)
    manager = _manager(tmp_path)
    audited: list[tuple[str, dict[str, Any]]] = []
    manager.record_audit = lambda _actor, event, **detail: audited.append((event, detail))
    with pytest.raises(AcmeError):
        asyncio.run(manager.renew())
    assert audited == [
        (
            "certificate.renewal_failed",
            {"domains": "cemm.example.org", "error": "unexpected error: disk full"},
        )
    ]


def test_a_successful_order_is_not_audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manager_module, "order_certificate", lambda *_: None)
    manager = _manager(tmp_path)
    audited: list[str] = []
    manager.record_audit = lambda _actor, event, **_detail: audited.append(event)
    asyncio.run(manager.renew())
    assert audited == []


def test_the_failure_notification_says_what_failed() -> None:
    from gateway.notify.events import EVENTS
    from gateway.notify.message import Notice, compose

    assert "certificate.renewal_failed" in EVENTS
    notice = Notice(
        "certificate.renewal_failed",
        1_700_000_000.0,
        "system",
        detail={"domains": "cemm.example.org", "error": "cannot reach the ACME directory"},
    )
    message = compose(notice, link=lambda page: f"https://gw:8443{page}")
    assert message.title == "Certificate order failed"
    assert message.body.splitlines()[0] == (
        "The certificate for cemm.example.org could not be ordered; the current one keeps"
        " serving: cannot reach the ACME directory"
    )
    assert message.body.endswith("https://gw:8443/")


def test_the_expiry_watch_reads_the_acme_certificate(tmp_path: Path) -> None:
    from gateway.tasks.notifications import certificate_path

    found = certificate_path(settings(data_dir=str(tmp_path), tls={"enabled": True}, acme=GOOD))
    assert found == AcmeStorage(tmp_path).cert


def test_board() -> None:
    board = ChallengeBoard()
    assert not board.any_pending()
    board.add("a", "a.x")
    board.add("b", "b.x")
    seen = board.pending
    board.remove("a")
    assert dict(seen) == {"a": "a.x", "b": "b.x"}  # a reader's view never changes under it
    assert dict(board.pending) == {"b": "b.x"}
    board.clear()
    assert not board.any_pending()


def test_acme_domains_join_the_gateways_own_names() -> None:
    from gateway import startup

    domains = ["cemm.example.org", "*.cemm.example.org"]
    found = startup.gateway_names(
        settings(
            tls={"enabled": True},
            acme={"enabled": True, "domains": domains, "challenge": "dns-01", "dns_hook": "/h"},
            listen={"host": "127.0.0.1"},
        ),
        None,
    )
    assert found.is_own_host("cemm.example.org")
    assert not found.is_own_host("other.cemm.example.org")  # a wildcard names no host
    off = startup.gateway_names(
        settings(acme={"enabled": False, "domains": domains}, listen={"host": "127.0.0.1"}), None
    )
    assert not off.is_own_host("cemm.example.org")
