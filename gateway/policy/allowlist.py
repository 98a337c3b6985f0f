"""IP allowlist: parsing entries, the compiled snapshot, and the accept decision.

This is the policy core behind the gateway's first line of defence: a client whose address
is not on the allowlist is disconnected before TLS or HTTP. It decides over plain data
(address text, entries, a `now` timestamp) and never touches sockets, the clock, the
database or mitmproxy.

Entries
-------
`parse_network(text)` turns what an operator typed into an `AllowlistNetwork`:

- an IPv4 or IPv6 network in CIDR notation (`192.168.1.0/24`, `fd00::/8`) or a single
  address (`203.0.113.7` becomes `/32`, `2001:db8::7` becomes `/128`);
- parsing is strict (stdlib `ipaddress` plus our own prefix check): shorthand (`10.1`,
  `127.1`), octal/hex forms, leading zeros, netmask notation (`10.0.0.0/255.0.0.0`),
  hostnames, zone ids (`fe80::1%eth0`) and empty text are refused;
- host bits set (`192.168.1.5/24`) are refused rather than silently widened or narrowed:
  the message asks "did you mean 192.168.1.0/24?", because either guess could be wrong
  and one of them grants access to 256 addresses;
- an IPv4-mapped IPv6 network lying inside `::ffff:0:0/96` is stored as the IPv4 network
  it denotes (`::ffff:10.0.0.0/104` is `10.0.0.0/8`), the same way client addresses are
  judged. An IPv6 network that merely *contains* the mapped range (`::/0`, `::/64`) stays
  an IPv6 network and never matches a mapped client: such a client is an IPv4 client.

Every refusal raises `AllowlistEntryError` (a `ValueError`) whose message says what is
wrong and shows a valid example, e.g. "allowlist entry '10.0.0.300/24' is not an IPv4 or
IPv6 network; example: 192.168.1.0/24".

netaddr is not the parser, nor the lookup (see below): `netaddr.IPNetwork` accepts netmask
notation, host bits (`192.168.1.5/24`) and a prefix length of `08`, keeps
`::ffff:10.0.0.0/104` an IPv6 network, and refuses everything else with one message
("invalid IPNetwork ..."). Each of those is a refusal with its own message here, so netaddr
would add a second parse without removing a check; it stays in the benchmarks.

Addresses
---------
Client addresses arrive as text from a socket peername (`192.168.1.10`, `2001:db8::1`,
`::ffff:10.0.0.1`, `fe80::1%eth0`). `parse_address` reads them with `socket.inet_pton`,
which accepts only full dotted-decimal IPv4 (never `10.1`, hex or octal) and standard IPv6
text. IPv4-mapped IPv6 addresses are judged as the IPv4 address. A `%zone` suffix is
dropped: the zone names the local interface, not the client, so an entry such as
`fe80::/10` admits link-local clients on every interface.

The snapshot
------------
`CompiledAllowlist(entries, now=...)` is an immutable snapshot built for one moment:
entries whose `expires_at <= now` are left out and `next_expiry` tells the caller when to
rebuild (`is_stale(now)`); lookups never read the clock. `match(address)` returns the key
of the most specific (longest prefix) entry containing the address, so the caller can keep
per-entry hit counts; among identical networks the first entry given wins.
`contains(address)` is `match(address) is not None`. `decide(address)` and
`decide_connection(peer, allowlist)` never raise: an unparsable peer is denied with the
reason "bad_address".

Lookup structure, chosen by measurement
---------------------------------------
CIDR networks are either nested or disjoint, so the entries of one address family cut the
address space into at most 2n+1 intervals, each owned by the most specific entry covering
it (or by nobody). The snapshot keeps, per family, the sorted interval starts and their
owners; a lookup is one `bisect_right` (about 14 comparisons at 10,000 entries) whatever
the prefix lengths. Address text is parsed with `inet_pton` + `int.from_bytes` (0.3 us)
instead of `ipaddress.ip_address` (2.6 us for IPv4, 7-10 us for IPv6). A small LRU cache
of address text -> owner saves the parse and the bisect for clients that reconnect.

Median time per decision (`decide_connection` from address text), 10,000 random entries
(half IPv4 /16-/32, half IPv6 /32-/128, so 97 distinct IPv6 prefix lengths), Python 3.13
on the project's build machine; `python bench/allowlist_decision.py` gives the full table:

    microseconds per decision            v4 hit  v4 miss  v6 hit  v6 miss
    netaddr.IPSet                         10.4     24.4    40.4     95.1
    dict per present prefix length         1.9      2.7     6.1     10.7
    intervals + bisect, new address        1.5      1.4     1.9      1.7
    intervals + bisect, repeated address   0.2      0.2     0.2      0.2

The dict per prefix length needs one probe per distinct prefix length on a miss, so it
grows towards 129 probes for IPv6 and already misses the 10 us target at 97; the intervals
do not depend on the prefix lengths at all. The LRU cache saves about 0.9 us when an
address repeats (browsers open several connections, WebSockets reconnect) and costs about
0.3 us when it does not (1.1-1.5 us without a cache); both are far below the target.
Building the snapshot takes about 35 ms for 10,000 entries. `python
bench/netaddr_decision.py` compares the lookup with netaddr.IPSet in CPU time (a few
seconds): 1.2-1.8 us against 11-105 us at 10 and 1,000 entries, 9 to 70 times faster.
"""

from __future__ import annotations

import ipaddress
import math
import re
import socket
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal, Never

from gateway.i18n import N_, Message

__all__ = [
    "DEFAULT_NETWORKS",
    "DENIED_BAD_ADDRESS",
    "DENIED_NOT_ALLOWLISTED",
    "AddressError",
    "AllowlistEntry",
    "AllowlistEntryError",
    "AllowlistNetwork",
    "CompiledAllowlist",
    "ConnectionDecision",
    "DecisionReason",
    "IPVersion",
    "decide_connection",
    "default_networks",
    "parse_address",
    "parse_network",
]

type IPVersion = Literal[4, 6]
type DecisionReason = Literal["allowed", "not_allowlisted", "bad_address"]

#: Networks that are always allowed unless the operator edits `[allowlist] default_networks`:
#: RFC 1918 private IPv4, IPv6 unique local addresses, and loopback. The VPN subnet is
#: added by the caller from the WireGuard config. Link-local (169.254.0.0/16, fe80::/10)
#: is deliberately absent: any device on the segment can self-assign such an address
#: without being handed one, 169.254.169.254 is the metadata service in many container
#: hosts, and a link-local entry cannot be tied to an interface (zones are ignored).
DEFAULT_NETWORKS: Final[tuple[str, ...]] = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
    "127.0.0.0/8",
    "::1/128",
)

_BITS: Final[dict[int, int]] = {4: 32, 6: 128}
_EXAMPLE_V4: Final = "192.168.1.0/24"
_EXAMPLE_V6: Final = "2001:db8::/32"
_MAPPED_PREFIX: Final = 0xFFFF  # top 96 bits of ::ffff:a.b.c.d
_PREFIX_LENGTH = re.compile(r"0|[1-9][0-9]{0,2}")
_SHOWN_ENTRY_CHARS: Final = 64
_DEFAULT_CACHE_SIZE: Final = 1024


class AllowlistEntryError(ValueError):
    """An allowlist entry that is not a usable IPv4/IPv6 network; the message says why.

    ``problem`` is a whole sentence from the catalogs with ``{entry}`` (the entry as
    given) and ``params``; ``example``, when given, is appended ("; example: ...").
    ``text`` is the message to show in the reader's language, ``str()`` the English one.
    """

    def __init__(
        self, entry: object, problem: str, example: str | None = _EXAMPLE_V4, **params: object
    ) -> None:
        self.entry = entry
        text = Message(problem, entry=_show(entry), **params)
        if example:
            text = Message(N_("{problem}; example: {example}"), problem=text, example=example)
        self.text = text
        super().__init__(str(text))


class AddressError(ValueError):
    """Text that is not an IPv4 or IPv6 address (for example a bad socket peer)."""


@dataclass(frozen=True, slots=True)
class AllowlistNetwork:
    """One IPv4 or IPv6 network, as integers: `first` is the network address."""

    version: IPVersion
    first: int
    prefix_length: int

    def __post_init__(self) -> None:
        bits = _BITS.get(self.version)
        if bits is None:
            raise ValueError(f"IP version must be 4 or 6, not {self.version!r}")
        if not 0 <= self.prefix_length <= bits:
            raise ValueError(
                f"prefix length {self.prefix_length} out of range for IPv{self.version}"
            )
        if not 0 <= self.first < 1 << bits or self.first & ((1 << (bits - self.prefix_length)) - 1):
            raise ValueError(f"{self.first:#x} is not an IPv{self.version} network address")

    @property
    def last(self) -> int:
        """The highest address in the network, as an integer."""
        return self.first | ((1 << (_BITS[self.version] - self.prefix_length)) - 1)

    def holds(self, version: int, value: int) -> bool:
        """Whether the address ``value`` of IP ``version`` lies in this network."""
        return self.version == version and self.first <= value <= self.last

    def __str__(self) -> str:
        network: ipaddress.IPv4Network | ipaddress.IPv6Network
        if self.version == 4:
            network = ipaddress.IPv4Network((self.first, self.prefix_length))
        else:
            network = ipaddress.IPv6Network((self.first, self.prefix_length))
        return network.with_prefixlen


@dataclass(frozen=True, slots=True)
class AllowlistEntry[K]:
    """An entry as the snapshot sees it: a caller-chosen key, a network, an optional expiry.

    `expires_at` is a Unix timestamp (seconds); the entry stops applying at that instant.
    """

    key: K
    network: AllowlistNetwork
    expires_at: float | None = None

    def __post_init__(self) -> None:
        if self.expires_at is not None and math.isnan(self.expires_at):
            raise ValueError("expires_at must be a timestamp or None, not NaN")


@dataclass(frozen=True, slots=True)
class ConnectionDecision[K]:
    """The outcome of the accept check. `reason` is stable, for metrics and logs."""

    allowed: bool
    reason: DecisionReason
    entry_key: K | None = None


DENIED_NOT_ALLOWLISTED: Final[ConnectionDecision[Never]] = ConnectionDecision(
    allowed=False, reason="not_allowlisted"
)
DENIED_BAD_ADDRESS: Final[ConnectionDecision[Never]] = ConnectionDecision(
    allowed=False, reason="bad_address"
)


def parse_network(text: str) -> AllowlistNetwork:
    """Parse an allowlist entry: a network in CIDR notation or a single address.

    Raises `AllowlistEntryError` with a message saying what is wrong and what would be right.
    """
    if not isinstance(text, str):
        raise AllowlistEntryError(text, N_("allowlist entry {entry} is not text"))
    stripped = text.strip()
    if not stripped:
        raise AllowlistEntryError(text, N_("allowlist entry {entry} is empty"))
    if "%" in stripped:
        raise AllowlistEntryError(
            stripped,
            N_(
                "allowlist entry {entry} has a zone id (the part after '%'), which names a "
                "local interface and cannot be allowlisted"
            ),
            "fe80::/10",
        )
    address_text, slash, prefix_text = stripped.partition("/")
    try:
        address = ipaddress.ip_address(address_text)
    except ValueError:
        raise AllowlistEntryError(
            stripped, N_("allowlist entry {entry} is not an IPv4 or IPv6 network")
        ) from None
    bits: int = address.max_prefixlen
    example = _EXAMPLE_V4 if address.version == 4 else _EXAMPLE_V6
    if not slash:
        prefix_length = bits
    elif "." in prefix_text or ":" in prefix_text:
        suggestion = _netmask_as_prefix(stripped)
        if suggestion is not None:
            raise AllowlistEntryError(
                stripped,
                N_(
                    "allowlist entry {entry} has a netmask where a prefix length belongs; "
                    "did you mean {suggestion}?"
                ),
                None,
                suggestion=suggestion,
            )
        raise AllowlistEntryError(
            stripped,
            N_("allowlist entry {entry} has a netmask where a prefix length belongs"),
            example,
        )
    elif _PREFIX_LENGTH.fullmatch(prefix_text) is None:
        raise AllowlistEntryError(
            stripped,
            N_(
                "allowlist entry {entry} has prefix length {prefix}, which is not a whole "
                "number from 0 to {bits}"
            ),
            example,
            prefix=repr(prefix_text),
            bits=bits,
        )
    else:
        prefix_length = int(prefix_text)
        if prefix_length > bits:
            raise AllowlistEntryError(
                stripped,
                N_(
                    "allowlist entry {entry} has prefix length /{prefix}, longer than the "
                    "{bits} bits of an IPv{version} address"
                ),
                example,
                prefix=prefix_length,
                bits=bits,
                version=address.version,
            )
    value = int(address)
    host_mask = (1 << (bits - prefix_length)) - 1
    if value & host_mask:
        network = ipaddress.ip_network((value & ~host_mask, prefix_length), strict=False)
        raise AllowlistEntryError(
            stripped,
            N_(
                "allowlist entry {entry} has host bits set; did you mean {network} (the "
                "network) or {address} (the single address)?"
            ),
            None,
            network=network.with_prefixlen,
            address=f"{address}/{bits}",
        )
    if address.version == 6 and prefix_length >= 96 and value >> 32 == _MAPPED_PREFIX:
        return AllowlistNetwork(4, value & 0xFFFFFFFF, prefix_length - 96)
    version: IPVersion = 4 if address.version == 4 else 6
    return AllowlistNetwork(version, value, prefix_length)


def _netmask_as_prefix(text: str) -> str | None:
    """`10.0.0.0/255.0.0.0` as `10.0.0.0/8`, if the stdlib reads it as a valid network."""
    try:
        return ipaddress.ip_network(text, strict=True).with_prefixlen
    except ValueError:
        return None


def default_networks() -> tuple[AllowlistNetwork, ...]:
    """`DEFAULT_NETWORKS` parsed: private IPv4, IPv6 ULA and loopback."""
    return tuple(parse_network(text) for text in DEFAULT_NETWORKS)


def _address_value(text: str) -> tuple[IPVersion, int]:
    """Fast path of `parse_address`; raises OSError, ValueError or TypeError on bad input."""
    if ":" in text:
        zone = text.find("%")
        if zone != -1:
            if zone == len(text) - 1:
                raise ValueError("empty zone id")
            text = text[:zone]
        value = int.from_bytes(socket.inet_pton(socket.AF_INET6, text))
        if value >> 32 == _MAPPED_PREFIX:
            return 4, value & 0xFFFFFFFF
        return 6, value
    return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text))


def parse_address(text: str) -> tuple[IPVersion, int]:
    """Parse a client address as it comes from a socket into `(version, integer value)`.

    IPv4-mapped IPv6 (`::ffff:10.0.0.1`) comes back as IPv4; a `%zone` suffix on IPv6 is
    dropped. Raises `AddressError` for anything else, including shorthand such as `127.1`.
    """
    try:
        return _address_value(text)
    except (OSError, TypeError, ValueError):
        raise AddressError(f"{_show(text)} is not an IPv4 or IPv6 address") from None


class _Intervals:
    """The address space of one family cut into intervals, each with its owning entry."""

    __slots__ = ("owners", "starts")

    def __init__(self, networks: list[tuple[int, int, int]], bits: int) -> None:
        """`networks` holds (first, last, entry index); owners are entry indexes, -1 for none."""
        starts: list[int] = [0]
        owners: list[int] = [-1]

        def own_from(start: int, owner: int) -> None:
            if owners[-1] == owner:
                return
            if starts[-1] == start:
                owners[-1] = owner
            else:
                starts.append(start)
                owners.append(owner)

        # Parents sort before their children, identical networks in entry order.
        networks.sort(key=lambda network: (network[0], -network[1], network[2]))
        enclosing: list[tuple[int, int, int]] = []  # stack of nested (first, last, index)
        cursor = 0  # first address not yet given an owner
        for first, last, index in networks:
            while enclosing and enclosing[-1][1] < first:
                _, closed_last, closed_index = enclosing.pop()
                if cursor <= closed_last:
                    own_from(cursor, closed_index)
                    cursor = closed_last + 1
            if enclosing and enclosing[-1][0] == first and enclosing[-1][1] == last:
                continue  # a duplicate network: the earlier entry keeps it
            if cursor < first:
                own_from(cursor, enclosing[-1][2] if enclosing else -1)
            enclosing.append((first, last, index))
            cursor = first
        while enclosing:
            _, closed_last, closed_index = enclosing.pop()
            if cursor <= closed_last:
                own_from(cursor, closed_index)
                cursor = closed_last + 1
        if cursor < 1 << bits:
            own_from(cursor, -1)
        self.starts = starts
        self.owners = owners

    def owner_of(self, value: int) -> int:
        return self.owners[bisect_right(self.starts, value) - 1]


class CompiledAllowlist[K]:
    """An immutable snapshot of the allowlist at one moment, for fast per-connection checks.

    Build a new one when entries change or when `is_stale(now)` says an entry has expired.
    """

    __slots__ = (
        "_allowed",
        "_built_at",
        "_cached_owner",
        "_entries",
        "_next_expiry",
        "_v4",
        "_v6",
    )

    def __init__(
        self,
        entries: Iterable[AllowlistEntry[K]],
        *,
        now: float,
        cache_size: int = _DEFAULT_CACHE_SIZE,
    ) -> None:
        """Compile the entries that have not expired at `now` (a Unix timestamp)."""
        active = tuple(
            entry for entry in entries if entry.expires_at is None or entry.expires_at > now
        )
        self._entries = active
        self._built_at = now
        self._next_expiry = min(
            (entry.expires_at for entry in active if entry.expires_at is not None), default=None
        )
        by_version: dict[int, list[tuple[int, int, int]]] = {4: [], 6: []}
        for index, entry in enumerate(active):
            network = entry.network
            by_version[network.version].append((network.first, network.last, index))
        self._v4 = _Intervals(by_version[4], 32)
        self._v6 = _Intervals(by_version[6], 128)
        # Index -1 (no owning entry) picks the last element: the shared denial.
        self._allowed: tuple[ConnectionDecision[K], ...] = (
            *(ConnectionDecision(True, "allowed", entry.key) for entry in active),
            DENIED_NOT_ALLOWLISTED,
        )
        self._cached_owner: Callable[[str], int] = lru_cache(maxsize=cache_size)(
            self._owner_of_text
        )

    @classmethod
    def from_networks(
        cls, networks: Iterable[AllowlistNetwork | str]
    ) -> CompiledAllowlist[AllowlistNetwork]:
        """A snapshot without expiry (defaults, trusted proxies), keyed by the network itself.

        Text is parsed with `parse_network` and may raise `AllowlistEntryError`.
        """
        parsed = [
            network if isinstance(network, AllowlistNetwork) else parse_network(network)
            for network in networks
        ]
        return CompiledAllowlist((AllowlistEntry(network, network) for network in parsed), now=0.0)

    @property
    def entries(self) -> tuple[AllowlistEntry[K], ...]:
        """The entries in force: those given, minus the ones expired at `built_at`."""
        return self._entries

    @property
    def built_at(self) -> float:
        """The `now` the snapshot was built for."""
        return self._built_at

    @property
    def next_expiry(self) -> float | None:
        """When the soonest-expiring entry in force expires, or None if none will."""
        return self._next_expiry

    def __len__(self) -> int:
        return len(self.entries)

    def is_stale(self, now: float) -> bool:
        """Whether an entry has expired since the snapshot was built: time to rebuild."""
        return self.next_expiry is not None and now >= self.next_expiry

    def _owner_of_text(self, address: str) -> int:
        version, value = _address_value(address)
        return (self._v4 if version == 4 else self._v6).owner_of(value)

    def _owner_of(self, address: str) -> int:
        try:
            return self._cached_owner(address)
        except (OSError, TypeError, ValueError):
            raise AddressError(f"{_show(address)} is not an IPv4 or IPv6 address") from None

    def match(self, address: str) -> K | None:
        """The key of the most specific entry containing the address, or None.

        Raises `AddressError` if the text is not an address (see `parse_address`).
        """
        return self._allowed[self._owner_of(address)].entry_key

    def contains(self, address: str) -> bool:
        """Whether any entry contains the address. Raises `AddressError` like `match`."""
        return self._owner_of(address) != -1

    def match_value(self, version: int, value: int) -> K | None:
        """`match` for an address given as an integer; mapped IPv6 is judged as IPv4."""
        if version == 6 and value >> 32 == _MAPPED_PREFIX:
            version, value = 4, value & 0xFFFFFFFF
        if version not in _BITS or not 0 <= value < 1 << _BITS[version]:
            raise AddressError(f"{value!r} is not an IPv{version} address")
        owner = (self._v4 if version == 4 else self._v6).owner_of(value)
        return self._allowed[owner].entry_key

    def decide(self, address: str) -> ConnectionDecision[K]:
        """Allow or deny a connection from `address`; never raises."""
        try:
            return self._allowed[self._cached_owner(address)]
        except (OSError, TypeError, ValueError):
            return DENIED_BAD_ADDRESS

    def __repr__(self) -> str:
        return (
            f"<CompiledAllowlist {len(self.entries)} entries, built_at={self.built_at}, "
            f"next_expiry={self.next_expiry}>"
        )


def decide_connection[K](peer: str, allowlist: CompiledAllowlist[K]) -> ConnectionDecision[K]:
    """The accept check: is the TCP peer address allowed? Plain data in, decision out.

    Never raises; a peer that is not an address is denied with reason "bad_address".
    """
    return allowlist.decide(peer)


def _show(value: object) -> str:
    """Quote user input for a message, cut short and with control characters escaped."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > _SHOWN_ENTRY_CHARS:
        text = text[:_SHOWN_ENTRY_CHARS] + "..."
    return repr(text)
