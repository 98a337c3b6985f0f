"""Times as the pages show them: the home's time zone, with the zone shown.

``2026-12-06 19:05 CET`` - a person reading a page on a phone in another country, or an
installer comparing it with the CEMM's display, sees which clock it is.

The home's zone is ``[ui] timezone`` (an IANA name such as ``Europe/Amsterdam``), set once
at start with :func:`use_timezone`; without it, the ``TZ`` environment variable (an IANA
name; another ``TZ`` form is honoured through the C library's local time); without
``TZ``, ``Europe/Amsterdam`` - the CEMM is a Dutch device, and a container's clock
otherwise says UTC.
"""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.i18n import gettext as _

__all__ = ["DEFAULT_ZONE", "home_zone", "use_timezone", "valid_zone", "when"]

DEFAULT_ZONE = "Europe/Amsterdam"
_configured: ZoneInfo | None = None


def valid_zone(name: str) -> bool:
    """Whether ``name`` is a zone the tz database knows (``Europe/Amsterdam``)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def use_timezone(name: str) -> None:
    """Show times in ``name`` from now on (``[ui] timezone``); empty: the ``TZ`` rule."""
    global _configured  # one setting of the process, made at start
    _configured = ZoneInfo(name) if name else None


def home_zone() -> dt.tzinfo | None:
    """The zone times are shown in; None: the C library's local time (a POSIX ``TZ``)."""
    if _configured is not None:
        return _configured
    name = os.environ.get("TZ", "").strip()
    if not name:
        return ZoneInfo(DEFAULT_ZONE)
    name = name.removeprefix(":")
    return ZoneInfo(name) if valid_zone(name) else None


def when(timestamp: float | None, *, seconds: bool = False) -> str:
    """``timestamp`` in the home's zone with the zone's abbreviation; ``-`` for nothing;
    words for a moment the platform cannot represent."""
    if timestamp is None:
        return "-"
    try:
        zone = home_zone()
        moment = (
            dt.datetime.fromtimestamp(timestamp, zone)
            if zone is not None
            else dt.datetime.fromtimestamp(timestamp).astimezone()
        )
    except (OverflowError, OSError, ValueError):
        return _("far in the future") if timestamp > 0 else _("long ago")
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")
