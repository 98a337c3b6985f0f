"""The languages a person reads the gateway in, and which one applies now.

The messages live in gettext catalogs, ``gateway/locale/<language>/LC_MESSAGES/messages.po``
(English as written in the code is the source; ``scripts/translations`` extracts, updates,
compiles and checks them; ``docs/translating.md``). The compiled ``messages.mo`` files are
part of the package. A language is available when its compiled catalog is there, so a
translator adds a third language by adding a catalog and nothing else.

Which language applies is per request (or per notification), never a process-wide switch:
:func:`use_language` sets it in a context variable for the code running inside it, so
concurrent requests in one event loop each keep their own. Outside of it (the CLI, the
logs, background jobs) the language is English. :func:`gettext` and :func:`ngettext`
translate into the language that applies.

The choice for a browser (:func:`choose`), first match wins:

1. the signed-in account's own choice (the account page);
2. ``[ui] language``, unless it is ``auto`` (the default);
3. the browser's ``Accept-Language``, negotiated against the available languages (Babel);
4. English.

"The home's language", for what reaches nobody's browser (notifications), is
``[ui] language``, or with ``auto`` the first admin's choice, else English
(:func:`home_language`).
"""

from __future__ import annotations

import contextlib
import gettext as _gettext
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.core import negotiate_locale

__all__ = [
    "AUTO",
    "ENGLISH",
    "LOCALE_DIR",
    "N_",
    "Message",
    "available",
    "choose",
    "current_language",
    "from_accept_language",
    "gettext",
    "home_language",
    "ngettext",
    "pgettext",
    "translations",
    "use_language",
]

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
ENGLISH = "en"
#: The ``[ui] language`` (and account) value that leaves the choice to what comes next.
AUTO = "auto"

_current: ContextVar[str] = ContextVar("cemm_gateway_language", default=ENGLISH)


@cache
def available() -> tuple[str, ...]:
    """English (the source) and every language with a compiled catalog, sorted."""
    found = {ENGLISH}
    if LOCALE_DIR.is_dir():
        for directory in LOCALE_DIR.iterdir():
            if (directory / "LC_MESSAGES" / f"{DOMAIN}.mo").is_file():
                found.add(directory.name)
    return tuple(sorted(found))


@cache
def translations(language: str) -> _gettext.NullTranslations:
    """The compiled catalog of ``language`` (English and unknown ones: the identity)."""
    if language == ENGLISH or language not in available():
        return _gettext.NullTranslations()
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
    with path.open("rb") as file:
        return _gettext.GNUTranslations(file)


def current_language() -> str:
    """The language of the request or message being made now (``en`` outside one)."""
    return _current.get()


@contextlib.contextmanager
def use_language(language: str) -> Iterator[str]:
    """Translate into ``language`` (English when it has no catalog) inside the block."""
    chosen = language if language in available() else ENGLISH
    token = _current.set(chosen)
    try:
        yield chosen
    finally:
        _current.reset(token)


def N_(message: str) -> str:
    """Marks ``message`` for the catalogs where it is defined; it is translated where it is
    shown (``_(value)``)."""
    return message


def gettext(message: str) -> str:
    """``message`` in the reader's language (:func:`current_language`)."""
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n``, in the reader's language."""
    return translations(_current.get()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """``message`` in the reader's language, where ``context`` tells apart the same English
    word used in two senses (``admin`` the app, ``admin`` the role)."""
    return translations(_current.get()).pgettext(context, message)


class Message:
    """A message made now and read later, in whichever language the reader has then.

    ``template`` is the English text with named placeholders, marked for the catalogs where
    it is written (``Message(N_("there is no peer '{name}'"), name=name)``); ``params`` fill
    them in. ``str()`` is the English text (what the CLI, the logs and the JSON API show);
    :meth:`translated` is the same in the reader's language (:func:`current_language`). A
    parameter that is itself a :class:`Message` is translated along. Without parameters the
    template is shown as it is (no placeholders are read), so any text can be wrapped.
    """

    __slots__ = ("params", "template")

    def __init__(self, template: str, /, **params: object) -> None:
        self.template = template
        self.params = params

    def __str__(self) -> str:
        if not self.params:
            return self.template
        return self.template.format(
            **{k: str(v) if isinstance(v, Message) else v for k, v in self.params.items()}
        )

    def __repr__(self) -> str:
        return f"Message({self.template!r}, **{self.params!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (self.template, self.params) == (other.template, other.params)

    def __hash__(self) -> int:
        return hash(self.template)

    def translated(self) -> str:
        """The message in the reader's language."""
        template = gettext(self.template)
        if not self.params:
            return template
        return template.format(
            **{k: v.translated() if isinstance(v, Message) else v for k, v in self.params.items()}
        )


def _accepted(header: str) -> list[str]:
    """The languages of an ``Accept-Language`` header, most wanted first (q=0 dropped)."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, index, tag.strip().replace("-", "_")))
    return [tag for _, _, tag in sorted(weighted)]


def from_accept_language(header: str | None) -> str | None:
    """The available language the browser wants most, or None (Babel's negotiation:
    ``nl-BE`` finds ``nl``)."""
    if not header:
        return None
    return negotiate_locale(_accepted(header), list(available()), sep="_")


def choose(*, account: str | None, configured: str, accept_language: str | None) -> str:
    """The language of a page: the account's choice, else ``[ui] language`` (``configured``)
    unless ``auto``, else the browser's ``Accept-Language``, else English. A choice
    without a catalog (removed since) counts as no choice."""
    for wanted in (account, configured):
        if wanted and wanted != AUTO and wanted in available():
            return wanted
    return from_accept_language(accept_language) or ENGLISH


def home_language(*, configured: str, first_admin: str | None) -> str:
    """The home's language: ``[ui] language``, or with ``auto`` the first admin's choice,
    else English."""
    for wanted in (configured, first_admin):
        if wanted and wanted != AUTO and wanted in available():
            return wanted
    return ENGLISH
