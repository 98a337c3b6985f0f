"""Cut-offs that could not be saved because the data directory's disk is full.

Cutting someone off must work when nothing can be written. In the running gateway (the
app calls :func:`enable`), a session revoke, a revoke of all of a user's sessions, an API
token revoke or a user disable whose write fails with
:class:`~gateway.store.db.DiskFullError` is held here instead:

- it takes effect at once: :func:`gateway.services.sessions.load_snapshot` leaves out held
  sessions and tokens and everything of a held user, and the app then closes their
  connections as for any revocation;
- it is saved when there is room: the recorder calls :func:`replay` every round, which
  runs each held change as the service call it was (the audit entry dated when it was
  made); one that no longer applies (already revoked) is dropped, one that still finds the
  disk full stays;
- it is never dropped while the process runs. Held changes live in this process's memory:
  a restart while the disk is still full loses them (the log says so when one is held).

Outside the gateway (the CLI), nothing is held: the command fails with the full-disk
message, since a process that exits cannot keep anything in force.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from gateway.store.db import DiskFullError

logger = logging.getLogger("cemm_gateway")

Kind = Literal["session", "token", "user"]


@dataclass(frozen=True)
class Cutoff:
    kind: Kind
    key: str  # session id, token id, or user id (as text)
    description: str
    save: Callable[[sqlite3.Connection], object] = field(compare=False)


_lock = threading.Lock()
_held: dict[tuple[Kind, str], Cutoff] = {}
_enabled = False


def enable(on: bool = True) -> None:
    """Hold cut-offs in this process (the running gateway only)."""
    global _enabled
    _enabled = on


def enabled() -> bool:
    return _enabled


def hold(cutoff: Cutoff) -> None:
    with _lock:
        _held[(cutoff.kind, cutoff.key)] = cutoff
    logger.warning(
        "%s: in force now, saved when the disk has room (lost if the gateway restarts before then)",
        cutoff.description,
    )


def held(kind: Kind) -> frozenset[str]:
    with _lock:
        return frozenset(key for k, key in _held if k == kind)


def pending() -> int:
    with _lock:
        return len(_held)


def replay(conn: sqlite3.Connection) -> int:
    """Save the held cut-offs that can be saved now; return how many were."""
    with _lock:
        waiting = list(_held.items())
    saved = 0
    for key, cutoff in waiting:
        try:
            cutoff.save(conn)
        except DiskFullError:
            break  # still full: all stay
        except (ValueError, LookupError):
            pass  # no longer applies (already revoked, removed meanwhile)
        saved += 1
        with _lock:
            _held.pop(key, None)
        logger.info("%s: saved", cutoff.description)
    return saved


def clear() -> None:
    """Forget everything held (tests)."""
    with _lock:
        _held.clear()
