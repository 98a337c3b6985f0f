"""Notifications as the gateway runs them: the receivers from ``[notify]``, the
:class:`~gateway.notify.delivery.Notifier`, the audit log watch, and the links to the admin
app in each message.

With no receiver configured nothing runs and nothing is imported from Apprise.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from gateway import i18n
from gateway.auth.bruteforce import BruteForcePolicy
from gateway.netutil import machine_names
from gateway.notify.delivery import Notifier, Send, apprise_sender
from gateway.notify.events import EVENTS, TEST
from gateway.notify.message import Notice, compose, mask
from gateway.notify.sources import AuditSource, AuditWatch
from gateway.policy.names import OwnNames, web_url
from gateway.services import languages
from gateway.settings import Settings, SettingsError


def receiver_urls(settings: Settings) -> list[str]:
    """``[notify] urls`` and the lines of ``[notify] urls_file`` (blank lines and ``#``
    comments skipped)."""
    urls = [url.strip() for url in settings.notify.urls if url.strip()]
    path = settings.notify.urls_file
    if path:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as error:
            raise SettingsError(f"notify.urls_file: cannot read {path}: {error.strerror}") from None
        urls += [
            line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")
        ]
    return urls


def is_receiver_url(url: str) -> bool:
    """Whether Apprise can send to ``url`` (its scheme is a known service and the URL is
    complete); nothing is sent."""
    # Imported here, as in delivery: only a gateway with receivers needs Apprise.
    import apprise

    # Apprise logs a URL it cannot parse whole, secrets and all: quiet while it looks.
    log = logging.getLogger("apprise")
    was, log.disabled = log.disabled, True
    try:
        return bool(apprise.Apprise().add(url))
    finally:
        log.disabled = was


def chosen_events(settings: Settings) -> frozenset[str]:
    """``[notify] events``, or every notifiable event when it is empty."""
    return frozenset(settings.notify.events or EVENTS)


def admin_link(settings: Settings) -> Callable[[str], str]:
    """Page path -> URL of that admin app page on ``[listen] admin_port``: on the host of
    ``[listen] public_url`` when set, else on an address a phone on the LAN can reach."""
    listen = settings.listen
    public = urlsplit(listen.public_url) if listen.public_url else None
    host = public.hostname if public is not None else None
    names = OwnNames(hosts=frozenset({host})) if host else OwnNames()

    def link(path: str) -> str:
        return web_url(
            path,
            public_url="",
            names=names,
            host=host,
            addresses=machine_names(listen.host),
            tls=settings.tls.enabled or (public is not None and public.scheme == "https"),
            web_port=listen.admin_port,
        )

    return link


def home_language(settings: Settings) -> Callable[[], str]:
    """The home's language (:func:`gateway.i18n.home_language`): ``[ui] language``, or
    with ``auto`` the first admin's choice (read from the database each time: it can
    change while the gateway runs), else English."""

    def language() -> str:
        first_admin = None
        if settings.ui.language == i18n.AUTO:
            try:
                # Read-only: never creates the database (the gateway's start does).
                uri = f"file:{settings.database_path}?mode=ro"
                with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5.0)) as conn:
                    conn.row_factory = sqlite3.Row
                    first_admin = languages.first_admin_language(conn)
            except sqlite3.Error:
                first_admin = None  # no database yet: English
        return i18n.home_language(configured=settings.ui.language, first_admin=first_admin)

    return language


def make_notifier(settings: Settings, *, send: Send | None = None) -> Notifier | None:
    """The notifier for ``settings``; None when no receiver is configured."""
    urls = receiver_urls(settings)
    if not urls and send is None:
        return None
    return Notifier(
        send or apprise_sender(urls),
        receivers=urls,
        events=chosen_events(settings),
        link=admin_link(settings),
        language=home_language(settings),
    )


@dataclass
class Notifications:
    """The running parts; :meth:`stop` ends them."""

    notifier: Notifier
    watch: AuditWatch | None

    def stop(self) -> None:
        if self.watch is not None:
            self.watch.stop()
        self.notifier.stop()


def start(
    settings: Settings, policy: BruteForcePolicy, *, send: Send | None = None
) -> Notifications | None:
    """Start delivery and the audit log watch (own database connection, own threads)."""
    notifier = make_notifier(settings, send=send)
    if notifier is None:
        return None
    notifier.start()
    conn = sqlite3.connect(
        settings.database_path, timeout=5.0, check_same_thread=False, isolation_level=None
    )
    conn.row_factory = sqlite3.Row
    watch = AuditWatch(AuditSource(conn, policy, notifier.notify))
    watch.start()
    return Notifications(notifier, watch)


def send_test_now(settings: Settings, actor: str, *, send: Send | None = None) -> list[str]:
    """Send the test message to every receiver now (not through the queue: the person
    asking waits for the answer); the masked receivers. Raises :class:`SettingsError` when
    none is configured and :class:`DeliveryError` when one did not take it."""
    urls = receiver_urls(settings)
    if not urls and send is None:
        raise SettingsError("no notification receiver: set [notify] urls or urls_file")
    sender = send or apprise_sender(urls)
    notice = Notice(TEST.name, time.time(), actor)
    message = compose(notice, link=admin_link(settings), language=home_language(settings)())
    if not sender(message):
        raise DeliveryError(
            "a receiver did not take the test message (" + ", ".join(map(mask, urls)) + ")"
        )
    return [mask(url) for url in urls]


class DeliveryError(Exception):
    """A receiver did not take a message."""
