"""Reading the audit log as people ask for it: a filter from typed text, a page of the
newest entries, and the whole matching log as a CSV file.

The filter's moments are ISO 8601 dates or date-times (:data:`MOMENT_PATTERN`); without an
offset they are the gateway's local time. The CSV export reads the log a batch at a time
(:func:`csv_chunks`) and is written out whole before anyone sends a byte of it
(:func:`spooled`): a failure half-way is an error, never a shorter file that looks
complete.
"""

from __future__ import annotations

import functools
import math
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from gateway import durations
from gateway.i18n import N_
from gateway.services import audit
from gateway.services.errors import Invalid

#: What a time filter may look like: an ISO 8601 date or date-time, optionally with an
#: offset (``2026-01-31``, ``2026-01-31T08:00``, ``2026-01-31T08:00:00Z``).
MOMENT_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?$"
)
# Entries read from the database at a time for the CSV export.
EXPORT_BATCH = 1000
# Bytes of an export held in memory; a larger one goes to a temporary file in the data
# directory (unlinked at once: nothing is left behind).
EXPORT_IN_MEMORY = 4 * 1024 * 1024
EXPORT_READ_SIZE = 64 * 1024
_ALL = 2**63 - 1


class Runner(Protocol):
    """Runs a database function off the event loop (:class:`gateway.store.worker.DbWorker`)."""

    def run(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Awaitable[Any]: ...


@dataclass(frozen=True)
class AuditQuery:
    """Which entries: by who did it or whom it was about, by event, by time (Unix times,
    ``until`` exclusive); at most ``limit`` of them for a page."""

    user: str | None = None
    event: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 200


def moment(text: str | None, label: str) -> float | None:
    """A time filter as typed (see :data:`MOMENT_PATTERN`) as a Unix time; ``label`` names
    the field in the refusal."""
    if not text:
        return None
    try:
        parsed = durations.parse_moment(text)
    except durations.DurationError:
        raise Invalid(
            N_("'{text}' is not a date and time for '{label}'; e.g. 2026-01-31T08:00"),
            field=label,
            text=text,
            label=label,
        ) from None
    try:
        return durations.timestamp(parsed)
    except durations.DurationError as error:
        raise Invalid(error.text, field=label) from None


def page(conn: sqlite3.Connection, query: AuditQuery) -> tuple[list[audit.AuditEntry], bool]:
    """Matching entries, newest first, and whether there are more than ``query.limit``."""
    found = audit.search(
        conn,
        user=query.user or None,
        event=query.event or None,
        since=query.since,
        until=query.until,
        limit=query.limit + 1,
    )
    return found[: query.limit], len(found) > query.limit


async def csv_chunks(
    db: Runner,
    *,
    user: str | None,
    event: str | None,
    since: float | None,
    until: float | None,
    most: int | None = None,
    batch: int = EXPORT_BATCH,
) -> AsyncIterator[str]:
    """The CSV export, a header and then up to ``batch`` entries at a time, newest first:
    every entry that matches (or the newest ``most``), in memory of one batch whatever
    the log's size, the database free for other requests between batches.

    Each batch is the entries before the previous batch's oldest time (``until`` is
    exclusive). Entries at the very same time cannot be split that way, so those at a
    full batch's oldest time are read whole, by themselves, before moving on.
    """
    search = functools.partial(audit.search, user=user, event=event, since=since)
    header = audit.as_csv([])
    yield header
    left = most
    while left is None or left > 0:
        found = await db.run(search, until=until, limit=batch)
        full = len(found) == batch
        if full:
            oldest = found[-1].at
            at_oldest = await db.run(
                search, since=oldest, until=math.nextafter(oldest, math.inf), limit=_ALL
            )
            found = [entry for entry in found if entry.at > oldest] + at_oldest
            until = oldest
        if left is not None:
            found = found[:left]
            left -= len(found)
        if found:
            yield audit.as_csv(found)[len(header) :]
        if not full:
            return


async def spooled(
    db: Runner, query: AuditQuery, *, most: int | None, directory: Path
) -> tuple[IO[bytes], int]:
    """The whole export written out (in memory, or a temporary file in ``directory``),
    rewound, and its size; the caller reads it with :func:`read_out`, which closes it."""
    chunks = csv_chunks(
        db,
        user=query.user or None,
        event=query.event or None,
        since=query.since,
        until=query.until,
        most=most,
        batch=EXPORT_BATCH,
    )
    spool = tempfile.SpooledTemporaryFile(  # closed by read_out, or below
        max_size=EXPORT_IN_MEMORY, mode="w+b", dir=str(directory)
    )
    try:
        async for chunk in chunks:
            spool.write(chunk.encode())
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool, size


async def read_out(spool: IO[bytes]) -> AsyncIterator[bytes]:
    """The spooled export in blocks; closes (and so removes) it at the end."""
    try:
        while block := spool.read(EXPORT_READ_SIZE):
            yield block
    finally:
        spool.close()
