"""Durations and moments as people type them: ``7d``, ``12h``, ``2026-11-01T08:00``.

One reader for every place that takes a duration (allowlist and token expiry, peer links,
audit filters) and one for a moment, so ``7d`` means the same on the CLI, in the JSON API
and on the pages.
"""

from __future__ import annotations

import datetime as dt
import re

from gateway.i18n import N_
from gateway.services.errors import Invalid

__all__ = ["DurationError", "parse_duration", "parse_expiry", "parse_moment", "timestamp"]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class DurationError(Invalid):
    """Text that is not a duration (or moment) as :func:`parse_duration` reads it."""


def parse_duration(text: str) -> float:
    """``30m``, ``12h``, ``7d``, ``2w`` -> seconds. Refuses anything else, clearly."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise DurationError(
            N_(
                "expiry '{text}' is not a duration; use a positive number with a unit "
                "s, m, h, d or w, for example 7d or 12h"
            ),
            text=text,
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_expiry(text: str | None) -> float | None:
    """``never`` (or nothing) -> None; otherwise a duration as :func:`parse_duration` reads it."""
    if text is None or not text.strip() or text.strip().lower() == "never":
        return None
    return parse_duration(text)


def parse_moment(text: str) -> dt.datetime:
    """A date, or a date and time, in ISO 8601 (``2026-11-01``, ``2026-11-01T08:00``,
    with or without an offset). Without an offset it is local time: the result is then
    naive and :func:`timestamp` reads it so. Raises :class:`DurationError`."""
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise DurationError(N_("'{text}' is not a date and time"), text=text) from None


def timestamp(moment: dt.datetime) -> float:
    """A moment as a Unix time; a naive one is local time. Raises :class:`DurationError`
    for a moment the platform cannot represent."""
    try:
        return (moment if moment.tzinfo else moment.astimezone()).timestamp()
    except (OverflowError, OSError, ValueError):
        raise DurationError(N_("{moment} is out of range"), moment=moment.isoformat()) from None
