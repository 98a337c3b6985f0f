"""English left on a page that should be Dutch: the words a person sees (text, and the
attributes that show as text: labels of table cells on a phone, placeholders, titles,
confirmation questions), compared with the English catalog's message ids.

A word counts as English when it occurs in the English messages and in no Dutch
translation (so "CEMM", "WebSocket" or "status", the same in both, never count), and is
not on :data:`SAME_IN_BOTH`. Machine text is not read: ``<code>``, ``<pre>``, scripts,
styles, the CEMM's own facts on the dashboard (``dl.facts``: the monitor's text), and the
audit log's entries and event list (event names and details as stored); these two are in
English until their texts are sentences in the catalogs; nor are the attributes of an
element marked ``translate="no"`` (data shown as a tooltip: a browser's User-Agent). A
test's own data (names, user agents) is taken out of the text first (``data``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
DUTCH = ROOT / "gateway" / "locale" / "nl" / "LC_MESSAGES" / "messages.po"

#: Words spelled the same in Dutch that the Dutch catalog happens not to use.
SAME_IN_BOTH = frozenset({"apprise", "ntfy", "telegram", "signal", "csv", "get", "head"})

_SHOWN_ATTRIBUTES = (
    "data-label",
    "placeholder",
    "title",
    "aria-label",
    "data-confirm",
    "data-confirm-button",
    "data-confirm-cancel",
    "alt",
)
_SKIPPED = {"code", "pre", "script", "style", "textarea"}
_MACHINE_IDS = {"audit", "audit-event"}
_WORD = re.compile(r"[A-Za-z][a-z]{2,}")
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}|%\([a-z_]+\)s|<[^>]+>")


def _words(text: str) -> set[str]:
    return {word.lower() for word in _WORD.findall(_PLACEHOLDER.sub(" ", text))}


@cache
def english_words() -> frozenset[str]:
    """Words of the English messages that no Dutch translation uses."""
    with DUTCH.open("rb") as file:
        catalog = read_po(file)
    english: set[str] = set()
    dutch: set[str] = set()
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        texts = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in ids:
            english |= _words(text)
        for text in texts:
            dutch |= _words(text)
    return frozenset(english - dutch - SAME_IN_BOTH)


class _Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        machine = "facts" in (values.get("class") or "").split() or values.get("id") in _MACHINE_IDS
        if self._skipping or tag in _SKIPPED or machine:
            if tag not in ("br", "input", "img", "meta", "link", "source"):
                self._skipping.append(tag)
            return
        if values.get("translate") == "no":
            return  # its attributes are data (a browser's raw User-Agent as the tooltip)
        self.texts.extend(values[name] or "" for name in _SHOWN_ATTRIBUTES if values.get(name))

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.texts.append(data)


def visible_texts(page: str) -> list[str]:
    parser = _Visible()
    parser.feed(page)
    return [" ".join(text.split()) for text in parser.texts if text.strip()]


def english_left(page: str, data: Iterable[str] = ()) -> list[str]:
    """Each piece of visible text that still holds an English word, with the words;
    ``data`` (the test's own names and values) is not read."""
    vocabulary = english_words()
    found = []
    for shown in visible_texts(page):
        text = shown
        for value in sorted(data, key=len, reverse=True):
            text = text.replace(value, " ")
        words = sorted(_words(text) & vocabulary)
        if words:
            found.append(f"{text!r}: {', '.join(words)}")
    return found


def html_lang(page: str) -> str | None:
    found = re.search(r"<html lang=\"?([A-Za-z-]+)", page)
    return found.group(1) if found else None
