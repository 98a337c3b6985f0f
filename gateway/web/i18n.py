"""Text a person reads, through gettext: ``{% trans %}`` in templates, :func:`gettext` in code.

Every template environment of the web app is made by :func:`templates`, with Jinja2's i18n
extension installed over :mod:`gateway.i18n` (so a page is translated into the language
of the request that renders it: the web app sets it per request), the ``language()``
global for ``<html lang>``, and the ``when`` filter (:func:`gateway.web.times.when`:
local time with its zone).
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from fastapi.templating import Jinja2Templates

from gateway.i18n import current_language, gettext, ngettext, pgettext
from gateway.web.times import when

__all__ = ["gettext", "ngettext", "templates"]


def templates(*directories: Path) -> Jinja2Templates:
    """A template loader over ``directories`` (searched in order) with gettext installed."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(list(directories)),
        autoescape=jinja2.select_autoescape(),
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext, ngettext, newstyle=True, pgettext=pgettext
    )
    env.globals["language"] = current_language
    env.filters["when"] = when
    return Jinja2Templates(env=env)
