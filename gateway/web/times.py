"""Times as the pages show them: the gateway's local time (``TZ``), with its zone.

``2026-12-06 19:05 CET`` - a person reading a page on a phone in another country, or an
installer comparing it with the CEMM's display, sees which clock it is.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["when"]


def when(timestamp: float | None, *, seconds: bool = False) -> str:
    """``timestamp`` in the gateway's local time with the zone's abbreviation; ``-`` for
    nothing; words for a moment the platform cannot represent."""
    if timestamp is None:
        return "-"
    try:
        moment = dt.datetime.fromtimestamp(timestamp).astimezone()
    except (OverflowError, OSError, ValueError):
        return "far in the future" if timestamp > 0 else "long ago"
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")
