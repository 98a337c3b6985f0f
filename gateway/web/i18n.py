"""Text a person reads, through gettext: ``{% trans %}`` in templates, :func:`gettext` in code.

Every template environment of the web app is made by :func:`templates`, with Jinja2's i18n
extension installed, so a page can mark its sentences for translation from the first
line, and the ``when`` filter (:func:`gateway.web.times.when`: local time with its zone).
Until catalogs exist the translations are the identity (English as written).
"""

from __future__ import annotations

import gettext as _gettext
from pathlib import Path

import jinja2
from fastapi.templating import Jinja2Templates

from gateway.web.times import when

__all__ = ["gettext", "ngettext", "templates"]

_TRANSLATIONS = _gettext.NullTranslations()


def gettext(message: str) -> str:
    """``message`` in the reader's language (English until catalogs exist)."""
    return _TRANSLATIONS.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n``, in the reader's language."""
    return _TRANSLATIONS.ngettext(singular, plural, n)


def templates(*directories: Path) -> Jinja2Templates:
    """A template loader over ``directories`` (searched in order) with gettext installed."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(list(directories)),
        autoescape=jinja2.select_autoescape(),
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["when"] = when
    return Jinja2Templates(env=env)
