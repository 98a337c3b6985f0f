"""What one notification says: title and body in the reader's language, short, with who,
what, from where, when, and a link to the admin app page that shows it.

A folded notice (the same kind of event again, within the fold period) says how many times
it happened and when the first and the last were. URLs of receivers carry secrets and are
shown only masked (:func:`mask`), in the admin app and in every log line.
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from gateway import i18n
from gateway.i18n import N_, gettext, ngettext
from gateway.notify.events import EVENTS, TEST, Event


@dataclass(frozen=True)
class Notice:
    """One event to tell the owner about."""

    event: str
    at: float
    actor: str = ""
    address: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    #: Notices with the same key fold into one message (the event, by default).
    key: str = ""

    @property
    def fold_key(self) -> str:
        return self.key or self.event


@dataclass(frozen=True)
class Message:
    title: str
    body: str


class _Lenient(string.Formatter):
    """``str.format`` that reads a missing or empty detail as ``?``."""

    def get_value(self, key: int | str, args: Any, kwargs: Mapping[str, Any]) -> Any:
        value = kwargs.get(str(key)) if isinstance(key, str) else None
        return "?" if value is None or value == "" else value


def when(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float) -> str:
    """``seconds`` as a person says it: 45 s, 15 min, 2 h 5 min."""
    seconds = round(seconds)
    if seconds < 120:
        return gettext("{n} s").format(n=seconds)
    minutes = seconds // 60
    if minutes < 120:
        return gettext("{n} min").format(n=minutes)
    return gettext("{h} h {m} min").format(h=minutes // 60, m=minutes % 60)


#: Who a burst of failed logins is about (``account anna``, ``address 192.0.2.7``), by kind.
_SUBJECTS = {"account": N_("account {name}"), "address": N_("address {name}")}


def _shown(key: str, value: Any) -> Any:
    """The detail as a person reads it, in the message's language: moments (``until``,
    ``..._at``) as times, a ``window`` of seconds as a duration, a burst's ``subject``."""
    if isinstance(value, int | float) and (key == "until" or key.endswith("_at")):
        return when(float(value))
    if key == "window" and isinstance(value, int | float):
        return duration(float(value))
    if key == "subject" and isinstance(value, str):
        kind, _, name = value.partition(" ")
        if kind in _SUBJECTS and name:
            return gettext(_SUBJECTS[kind]).format(name=name)
    return value


def event_of(name: str) -> Event:
    return TEST if name == TEST.name else EVENTS[name]


def compose(
    notice: Notice,
    *,
    count: int = 1,
    last_at: float | None = None,
    link: Callable[[str], str],
    language: str = i18n.ENGLISH,
) -> Message:
    """The message for ``notice`` (the first of ``count`` folded ones, the last at
    ``last_at``) in ``language`` (the home's language); ``link`` makes an admin app URL
    from a page path."""
    with i18n.use_language(language):
        return _compose(notice, count=count, last_at=last_at, link=link)


def _compose(
    notice: Notice, *, count: int, last_at: float | None, link: Callable[[str], str]
) -> Message:
    event = event_of(notice.event)
    values = {"actor": notice.actor, "address": notice.address}
    values |= {key: _shown(key, value) for key, value in notice.detail.items()}
    lines = [_Lenient().format(gettext(event.text), **values)]
    if count > 1 and last_at is not None:
        lines.append(
            ngettext(
                "{count} time, from {first} to {last}.",
                "{count} times, from {first} to {last}.",
                count,
            ).format(count=count, first=when(notice.at), last=when(last_at))
        )
    else:
        lines.append(gettext("When: {when}").format(when=when(notice.at)))
    if notice.address:
        lines.append(gettext("From: {address}").format(address=notice.address))
    lines.append(link(event.page))
    title = gettext(event.title)
    if count > 1:
        title = gettext("{title} ({count} times)").format(title=title, count=count)
    return Message(title=title, body="\n".join(lines))


def mask(url: str) -> str:
    """A receiver URL with everything after the scheme hidden (tokens, passwords, topics
    and chat ids are all secrets)."""
    scheme = urlsplit(url.strip()).scheme or "?"
    return f"{scheme}://•••"
