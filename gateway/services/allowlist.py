"""Allowlist entries: the one place that validates, stores and audits them.

The CLI and the admin app call these functions; neither writes SQL. The running
gateway does not read entries per connection: it compiles them into a snapshot
(:mod:`gateway.services.policy`) whenever the table changes or an entry expires.

Self lock-out. A person changing the allowlist from a browser passes :class:`OwnAddress`
(the client address the proxy saw, and the configured ``default_networks``). A change
that would end that address's access to the web and ws ports - removing the last entry
that admits it, or moving that entry's expiry earlier - is refused with
:class:`SelfLockoutError` unless ``confirmed``; a confirmed one says so in its audit entry.
``default_networks`` always apply, so an address inside them can never be cut off. The
admin port is not affected by any of this: it is guarded by ``admin_networks`` from the
configuration file only.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.i18n import N_, Message
from gateway.policy.allowlist import (
    AddressError,
    AllowlistEntryError,
    parse_address,
    parse_network,
)
from gateway.policy.wide_networks import wide_network_message
from gateway.services import audit
from gateway.services.errors import Conflict, Invalid, NotFound, ServiceError
from gateway.store.db import transaction


class AllowlistError(ServiceError):
    """A request to change the allowlist that cannot be carried out; the message says why."""


class AllowlistInvalid(AllowlistError, Invalid):
    """A network or label the allowlist cannot take as given."""


class EntryNotFound(AllowlistError, NotFound):
    """No such entry on the allowlist."""


class SelfLockoutError(AllowlistError, Conflict):
    """The change would cut off the address of whoever makes it; repeat it confirmed."""

    code = "self_lockout"

    def __init__(
        self,
        message: str | Message,
        *,
        address: str,
        admitted_until: float | None,
        **params: object,
    ) -> None:
        super().__init__(message if isinstance(message, Message) else Message(message, **params))
        self.address = address
        # When the address would stop being admitted: None = at once.
        self.admitted_until = admitted_until

    def extra(self) -> dict[str, object]:
        return {"address": self.address, "admitted_until": self.admitted_until}


class WideNetworkError(AllowlistError, Conflict):
    """The network is 0.0.0.0/0, ::/0 or a public network wider than /16
    (:mod:`gateway.policy.wide_networks`); repeat it confirmed."""

    code = "wide_network"

    def __init__(self, warning: str | Message, *, network: str) -> None:
        super().__init__(
            N_("{warning}. Confirm to add it anyway (API: confirm_wide; CLI: --yes)."),
            field="network",
            warning=warning,
        )
        self.network = network
        # What it means, as a sentence without the request to confirm (each edge words
        # that its own way: a button, --yes, confirm_wide); ``warning_text`` the same to
        # show in the reader's language.
        self.warning_text = Message("{warning}.", warning=warning)
        self.warning = str(self.warning_text)

    def extra(self) -> dict[str, object]:
        return {"network": self.network}


@dataclass(frozen=True)
class OwnAddress:
    """Where the person making a change connects from, so the change cannot lock them out.

    ``address`` is the client address the gateway saw for the request that asks for the
    change; ``default_networks`` are ``[allowlist] default_networks``, which admit on top
    of every entry. ``confirmed`` means the person saw the warning and wants it anyway.
    """

    address: str
    default_networks: Sequence[str]
    confirmed: bool = False


@dataclass(frozen=True)
class Entry:
    id: int
    network: str
    label: str
    expires_at: float | None
    created_at: float
    created_by: str
    hits: int
    last_hit_at: float | None

    def active_at(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now


#: The expiry choices the admin app offers; the CLI and the API take any duration too.
EXPIRY_CHOICES: dict[str, float | None] = {
    "never": None,
    "1h": 3600.0,
    "1d": 86400.0,
    "7d": 7 * 86400.0,
    "30d": 30 * 86400.0,
}


def normalise(network: str) -> str:
    """The canonical text of a network entry, or :class:`AllowlistError`."""
    try:
        return str(parse_network(network))
    except AllowlistEntryError as error:
        raise AllowlistInvalid(error.text, field="network") from None


def check_label(label: str) -> str:
    if len(label) > 200:
        raise AllowlistInvalid(N_("label is longer than 200 characters"), field="label")
    if any(ord(c) < 32 or ord(c) == 127 for c in label):
        raise AllowlistInvalid(
            N_("label contains control characters; use plain text"), field="label"
        )
    return label


def _entry(row: sqlite3.Row) -> Entry:
    return Entry(**{key: row[key] for key in row.keys()})


def list_entries(conn: sqlite3.Connection) -> list[Entry]:
    rows = conn.execute("SELECT * FROM allowlist_entry ORDER BY network").fetchall()
    return [_entry(row) for row in rows]


def get_entry(conn: sqlite3.Connection, entry_id: int) -> Entry | None:
    row = conn.execute("SELECT * FROM allowlist_entry WHERE id = ?", (entry_id,)).fetchone()
    return _entry(row) if row else None


# -- self lock-out ----------------------------------------------------------------------
def admitted_until(
    address: str,
    *,
    default_networks: Iterable[str],
    entries: Iterable[tuple[str, float | None]],
    now: float,
) -> float | None:
    """Until when the web and ws ports admit ``address``, given these entries.

    ``entries`` are ``(network, expires_at)``. Returns ``math.inf`` for "indefinitely",
    an expiry time, or None when the address is not admitted at all (also for text that
    is not an address).
    """
    try:
        version, value = parse_address(address)
    except AddressError:
        return None
    if any(parse_network(n).holds(version, value) for n in default_networks):
        return math.inf
    until: float | None = None
    for network, expires_at in entries:
        if expires_at is not None and expires_at <= now:
            continue
        if parse_network(network).holds(version, value):
            reach = math.inf if expires_at is None else expires_at
            until = reach if until is None else max(until, reach)
    return until


# Whole sentences for each case (removing or changing; cut off or admitted until a time).
_CUT_OFF = {
    False: N_(
        "Changing {network}: your own address {own} could no longer reach the CEMM through "
        "the gateway (nothing else on the allowlist admits it), and its open connections "
        "would close. Confirm to do it anyway."
    ),
    True: N_(
        "Removing {network}: your own address {own} could no longer reach the CEMM through "
        "the gateway (nothing else on the allowlist admits it), and its open connections "
        "would close. Confirm to do it anyway."
    ),
}
_ADMITTED_UNTIL = {
    False: N_(
        "Changing {network}: your own address {own} would be admitted only until {stamp}. "
        "Confirm to do it anyway."
    ),
    True: N_(
        "Removing {network}: your own address {own} would be admitted only until {stamp}. "
        "Confirm to do it anyway."
    ),
}


def _guard_own_address(
    own: OwnAddress,
    before: list[tuple[str, float | None]],
    after: list[tuple[str, float | None]],
    *,
    network: str,
    removing: bool,
    now: float,
) -> bool:
    """Raise :class:`SelfLockoutError` if ``after`` admits ``own.address`` for less time
    than ``before`` does (unless confirmed). Returns whether the change cuts it off."""
    defaults = own.default_networks
    was = admitted_until(own.address, default_networks=defaults, entries=before, now=now)
    will = admitted_until(own.address, default_networks=defaults, entries=after, now=now)
    if was is None or (will is not None and will >= was):
        return False
    if own.confirmed:
        return True
    if will is None:
        refusal = _CUT_OFF[removing]
        stamp: str | Message = ""  # not in this sentence
    else:
        refusal = _ADMITTED_UNTIL[removing]
        try:
            stamp = dt.datetime.fromtimestamp(will).astimezone().strftime("%Y-%m-%d %H:%M")
        except (OverflowError, OSError, ValueError):
            stamp = Message(N_("a date too far ahead to show"))
    raise SelfLockoutError(
        refusal,
        address=own.address,
        admitted_until=will,
        network=network,
        own=own.address,
        stamp=stamp,
    )


@dataclass(frozen=True)
class SavedEntry:
    """What :func:`save_entry` did: the entry now, and as it was if it was there already."""

    entry: Entry
    previous: Entry | None


def save_entry(
    conn: sqlite3.Connection,
    network: str,
    *,
    actor: str,
    label: str = "",
    expires_in: float | None = None,
    client_address: str | None = None,
    own_address: OwnAddress | None = None,
    confirm_wide: bool = False,
    clock: Clock = SYSTEM_CLOCK,
) -> SavedEntry:
    """Add one entry or, for a network already listed, replace its label and expiry.

    A new entry for a wide network (0.0.0.0/0, ::/0, a public network wider than /16:
    :mod:`gateway.policy.wide_networks`) is refused with :class:`WideNetworkError`, whose
    message says what it means, unless ``confirm_wide``; the audit entry of a confirmed one
    says so (``wide_network_confirmed``).

    The audit log says which: ``allowlist.add``, or ``allowlist.update`` with the label and
    expiry it had before (``previous_label``, ``previous_expires_at``). Who added the entry,
    and when, stay as they were. With ``own_address``, an update that would end that
    address's access sooner is refused unless confirmed (:class:`SelfLockoutError`).
    """
    canonical = normalise(network)
    check_label(label)
    now = clock.now()
    expires_at = now + expires_in if expires_in is not None else None
    warning = wide_network_message(parse_network(canonical))
    with transaction(conn):
        previous = _entry_for(conn, canonical)
        if warning is not None and previous is None and not confirm_wide:
            raise WideNetworkError(warning, network=canonical)
        cut_off = False
        if own_address is not None:
            before = _networks(conn)
            after = [(n, e) for n, e in before if n != canonical] + [(canonical, expires_at)]
            cut_off = _guard_own_address(
                own_address, before, after, network=canonical, removing=False, now=now
            )
        conn.execute(
            "INSERT INTO allowlist_entry (network, label, expires_at, created_at, created_by)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (network) DO UPDATE SET label = excluded.label,"
            " expires_at = excluded.expires_at",
            (canonical, label, expires_at, now, actor),
        )
        wide: dict[str, Any] = (
            {"wide_network_confirmed": True} if warning and previous is None else {}
        )
        was: dict[str, Any] = (
            {"previous_label": previous.label, "previous_expires_at": previous.expires_at}
            if previous is not None
            else {}
        )
        audit.record(
            conn,
            actor,
            "allowlist.update" if previous is not None else "allowlist.add",
            client_address=client_address,
            clock=clock,
            network=canonical,
            label=label,
            expires_at=expires_at,
            **was,
            **({"own_address_cut_off": own_address.address} if cut_off and own_address else {}),
            **wide,
        )
        row = conn.execute(
            "SELECT * FROM allowlist_entry WHERE network = ?", (canonical,)
        ).fetchone()
    return SavedEntry(_entry(row), previous)


def _entry_for(conn: sqlite3.Connection, network: str) -> Entry | None:
    row = conn.execute("SELECT * FROM allowlist_entry WHERE network = ?", (network,)).fetchone()
    return _entry(row) if row else None


def remove_entry(
    conn: sqlite3.Connection,
    network: str,
    *,
    actor: str,
    client_address: str | None = None,
    own_address: OwnAddress | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Remove one entry. With ``own_address``, refuses (unless confirmed) to remove the
    last entry admitting that address (:class:`SelfLockoutError`)."""
    canonical = normalise(network)
    with transaction(conn):
        cut_off = False
        if own_address is not None:
            before = _networks(conn)
            after = [(n, e) for n, e in before if n != canonical]
            cut_off = _guard_own_address(
                own_address, before, after, network=canonical, removing=True, now=clock.now()
            )
        deleted = conn.execute(
            "DELETE FROM allowlist_entry WHERE network = ?", (canonical,)
        ).rowcount
        if not deleted:
            raise EntryNotFound(
                N_(
                    "{network} is not on the allowlist; 'cemm-gateway allow list' shows the entries"
                ),
                network=canonical,
            )
        audit.record(
            conn,
            actor,
            "allowlist.remove",
            client_address=client_address,
            clock=clock,
            network=canonical,
            **({"own_address_cut_off": own_address.address} if cut_off and own_address else {}),
        )


def remove_entry_by_id(
    conn: sqlite3.Connection,
    entry_id: int,
    *,
    actor: str,
    client_address: str | None = None,
    own_address: OwnAddress | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> str:
    """Remove the entry with this id (the admin app's button), as :func:`remove_entry`;
    returns its network."""
    entry = get_entry(conn, entry_id)
    if entry is None:
        raise EntryNotFound(
            N_("there is no allowlist entry {id}; it may be removed already"), id=entry_id
        )
    remove_entry(
        conn,
        entry.network,
        actor=actor,
        client_address=client_address,
        own_address=own_address,
        clock=clock,
    )
    return entry.network


def _networks(conn: sqlite3.Connection) -> list[tuple[str, float | None]]:
    return [
        (row["network"], row["expires_at"])
        for row in conn.execute("SELECT network, expires_at FROM allowlist_entry")
    ]


def add_hits(conn: sqlite3.Connection, hits: Mapping[int, tuple[int, float]]) -> None:
    """Add counted hits ``{entry id: (count, last time)}``; removed entries are skipped."""
    if not hits:
        return
    with transaction(conn):
        conn.executemany(
            "UPDATE allowlist_entry SET hits = hits + ?,"
            " last_hit_at = max(coalesce(last_hit_at, 0), ?) WHERE id = ?",
            [(count, last, entry_id) for entry_id, (count, last) in hits.items()],
        )
