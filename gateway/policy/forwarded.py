"""Who is the client? Resolving forwarding headers from trusted proxies.

The gateway may sit behind another reverse proxy (`[allowlist] trusted_proxies`). Then the
TCP peer is that proxy, and the client's address is only known from the headers it adds.
Those headers are plain text anyone can send, so they count only when the TCP peer is a
trusted proxy, and are read so that no untrusted party can choose the result. This module
decides over plain data (peer address, header values, the trusted-proxy snapshot) and
returns a `ForwardedResult`; it never raises, whatever the input.

Specification
-------------
Inputs: the TCP peer address text, a `CompiledAllowlist` of trusted proxies, and every value
of the `Forwarded` (RFC 7239), `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host`
headers, in the order they appear. Several lines of one header are one list: their values
join with commas.

1. Untrusted peer. If the peer is not a trusted proxy (or is not an address at all), every
   forwarding header is ignored: `client` is the peer, `via_proxy` is False, and
   `headers_ignored` says whether any forwarding header was sent, so the caller can log it.
   The caller overwrites these headers upstream either way.

2. Trusted peer, no `Forwarded` and no `X-Forwarded-For`. The proxy is the client:
   `client` is the peer, `via_proxy` is False. `X-Forwarded-Proto`/`-Host` alone are ignored.

3. The chain of hops. From `Forwarded`, the chain is the `for=` node of each element, left
   to right; from `X-Forwarded-For`, each comma-separated entry. Then, from the right, skip
   every hop that is a trusted proxy; the first untrusted hop is the client. If every hop is
   trusted, the client is the leftmost hop (the connection began at a trusted address).
   `via_proxy` is True and `client` is the canonical text of that hop (IPv4-mapped IPv6
   written as IPv4).

4. Both `Forwarded` and `X-Forwarded-For` present. A proxy that maintains only one of the
   two passes the other through from the client untouched, and reading that one would let
   the client choose its own address. So the two chains must list the same addresses in
   the same order (ports are not compared); if they do not, the result is an error. When
   they agree, the chain is that list and `Forwarded` supplies proto and host first.

5. Proto and host. From `Forwarded`: the `proto=` and `host=` parameters of the chosen
   element. Otherwise, or when that element has none, and only if `X-Forwarded-For` is
   present: the `X-Forwarded-Proto`/`X-Forwarded-Host` entry at the chosen hop's position,
   used only when that header has exactly one entry per hop (otherwise it is ignored: we
   cannot tell which hop it belongs to). Proto must be `http` or `https` (any case;
   returned lower-case). Host must be `name[:port]`, `IPv4[:port]` or `[IPv6][:port]`
   with a port of at most 65535 (returned lower-case); spaces, slashes, `@` and the like
   are malformed. A trusted proxy must set or overwrite these headers for them to mean
   anything.

6. Malformed headers from a trusted proxy are an error (the caller answers 400):
   - an `X-Forwarded-For` entry that is not a bare IP address: empty (`1.2.3.4,,5.6.7.8`),
     a hostname, `unknown`, a port (`1.2.3.4:5678`), brackets (`[2001:db8::1]`) or a zone;
   - a `Forwarded` value that does not follow RFC 7239's grammar (`name=value` pairs split
     by `;`, elements split by `,`, values a token or a quoted string), a parameter given
     twice in one element, an empty element, an element without `for=`;
   - a `for=` node that is `unknown` or obfuscated (`_hidden`): usable chains need
     addresses; an IPv6 node without brackets; a zone id. Ports are allowed in `Forwarded`
     (`for="[2001:db8::1]:4711"`, `for="192.0.2.7:80"`, obfuscated `_port` too);
   - more than 32 hops, or more than 8192 characters in one header;
   - a malformed `proto`/`host` in an entry or element that is used (see 5), or anywhere in
     an `X-Forwarded-Proto`/`-Host` header whose entry count matches the hops;
   - a header value that is not text.
   On error, `client` is the peer and `error` says what is wrong, for the log.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from gateway.policy.allowlist import AddressError, CompiledAllowlist, IPVersion, parse_address

__all__ = [
    "CLIENT_SUPPLIED_HEADERS",
    "FORWARDING_HEADERS",
    "MAX_HEADER_CHARS",
    "MAX_HOPS",
    "ForwardedResult",
    "resolve_client",
]

#: Header names (lower-case) this module reads; the caller overwrites them upstream.
FORWARDING_HEADERS: Final = (
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
)
#: Every header (lower-case) by which a client could tell what sits behind the gateway who
#: it is, what it asked for or which method it meant - forwarding headers of every dialect,
#: the "real IP" headers of CDNs and load balancers, and URL and method overrides. A device
#: or app behind the gateway may believe any of them, and the gateway cannot know which, so
#: none of them is ever forwarded as the client sent it: the forwarding addon removes them
#: all and adds only its own ``X-Forwarded-For``/``-Proto``/``-Host`` (what a trusted proxy
#: said enters only through :func:`resolve_client`).
CLIENT_SUPPLIED_HEADERS: Final = frozenset(
    {
        *FORWARDING_HEADERS,
        "x-forwarded",
        "x-forwarded-port",
        "x-forwarded-server",
        "x-forwarded-prefix",
        "x-forwarded-uri",
        "x-forwarded-path",
        "x-forwarded-scheme",
        "x-forwarded-ssl",
        "x-original-forwarded-for",
        "x-real-ip",
        "x-client-ip",
        "client-ip",
        "x-cluster-client-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "cf-connecting-ipv6",
        "fastly-client-ip",
        "x-originating-ip",
        "x-remote-ip",
        "x-remote-addr",
        "x-proxyuser-ip",
        "x-host",
        "x-original-host",
        "x-original-url",
        "x-rewrite-url",
        "x-original-uri",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x-original-method",
    }
)
MAX_HOPS: Final = 32
MAX_HEADER_CHARS: Final = 8192

_OWS: Final = " \t"
_PROTOS: Final = frozenset({"http", "https"})
_MAX_HOSTNAME_CHARS: Final = 253
_SHOWN_CHARS: Final = 64

# RFC 7230 token and quoted-string, as RFC 7239 uses them. Optional whitespace around a
# pair is tolerated (real proxies write "for=a; proto=https"), nothing else is.
_HTTP_TCHARS: Final = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED: Final = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_PAIR = re.compile(rf"[ \t]*({_HTTP_TCHARS})=({_HTTP_TCHARS}|{_QUOTED})[ \t]*")
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_PORT: Final = r"[0-9]{1,5}"
_NODE_V4 = re.compile(rf"([0-9.]+)(?::({_PORT}|_[A-Za-z0-9._-]+))?")
_NODE_V6 = re.compile(rf"\[([0-9A-Fa-f:.]+)\](?::({_PORT}|_[A-Za-z0-9._-]+))?")
_LABEL: Final = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST = re.compile(
    rf"(?:(?P<name>{_LABEL}(?:\.{_LABEL})*\.?)|\[(?P<v6>[0-9A-Fa-f:.]+)\])(?::(?P<port>{_PORT}))?"
)

type _Hop = tuple[IPVersion, int]


@dataclass(frozen=True, slots=True)
class ForwardedResult:
    """Who the client is, and what the proxy chain says about the original request.

    - `client`: the address to apply the allowlist to, as canonical text (IPv4-mapped IPv6
      written as IPv4, a zone id dropped), or the peer text as given if it is no address.
    - `via_proxy`: True if `client` was taken from a trusted proxy's forwarding header.
    - `proto`, `host`: the original scheme and Host, from a trusted proxy, if known.
    - `error`: set when a trusted proxy sent malformed forwarding headers (answer 400).
    - `headers_ignored`: forwarding headers came from a peer that is not a trusted proxy.
    """

    client: str
    via_proxy: bool = False
    proto: str | None = None
    host: str | None = None
    error: str | None = None
    headers_ignored: bool = False


class _Malformed(Exception):
    """A forwarding header from a trusted proxy that cannot be used; becomes `error`."""


def resolve_client(
    peer: str,
    trusted_proxies: CompiledAllowlist[Any],
    *,
    forwarded: Iterable[str] | str = (),
    x_forwarded_for: Iterable[str] | str = (),
    x_forwarded_proto: Iterable[str] | str = (),
    x_forwarded_host: Iterable[str] | str = (),
) -> ForwardedResult:
    """Find the client address behind `peer`, following the module's specification.

    Each header argument takes all values of that header (one per header line); a single
    string is taken as one value. Never raises.
    """
    forwarded_values, for_values = _values(forwarded), _values(x_forwarded_for)
    proto_values, host_values = _values(x_forwarded_proto), _values(x_forwarded_host)
    any_sent = bool(forwarded_values or for_values or proto_values or host_values)
    try:
        peer_version, peer_value = parse_address(peer)
    except AddressError:
        peer_text = peer if isinstance(peer, str) else repr(peer)
        return ForwardedResult(client=peer_text, headers_ignored=any_sent)
    client_peer = _canonical(peer_version, peer_value)
    if trusted_proxies.match_value(peer_version, peer_value) is None:
        return ForwardedResult(client=client_peer, headers_ignored=any_sent)
    if not forwarded_values and not for_values:
        return ForwardedResult(client=client_peer)
    try:
        return _resolve_trusted(
            trusted_proxies, forwarded_values, for_values, proto_values, host_values
        )
    except _Malformed as malformed:
        return ForwardedResult(client=client_peer, error=str(malformed))


def _resolve_trusted(
    trusted_proxies: CompiledAllowlist[Any],
    forwarded_values: list[str],
    for_values: list[str],
    proto_values: list[str],
    host_values: list[str],
) -> ForwardedResult:
    elements = _parse_forwarded(forwarded_values) if forwarded_values else None
    for_hops = _parse_x_forwarded_for(for_values) if for_values else None
    if elements is not None:
        hops = [element.hop for element in elements]
        if for_hops is not None and for_hops != hops:
            raise _Malformed(
                "Forwarded and X-Forwarded-For list different addresses; a trusted proxy must "
                "maintain both or remove the one it does not use"
            )
    else:
        assert for_hops is not None
        hops = for_hops
    index = _client_index(hops, trusted_proxies)
    proto = host = None
    if elements is not None:
        for element in elements:  # validate all, use the chosen one
            element_proto = _check_proto(element.proto, "Forwarded proto=")
            element_host = _check_host(element.host, "Forwarded host=")
            if element is elements[index]:
                proto, host = element_proto, element_host
    if for_hops is not None:
        if proto is None:
            proto = _entry_at(proto_values, index, len(hops), _check_proto, "X-Forwarded-Proto")
        if host is None:
            host = _entry_at(host_values, index, len(hops), _check_host, "X-Forwarded-Host")
    return ForwardedResult(client=_canonical(*hops[index]), via_proxy=True, proto=proto, host=host)


def _client_index(hops: list[_Hop], trusted_proxies: CompiledAllowlist[Any]) -> int:
    """Right to left, the first hop that is not a trusted proxy; else the leftmost."""
    for index in range(len(hops) - 1, -1, -1):
        if trusted_proxies.match_value(*hops[index]) is None:
            return index
    return 0


@dataclass(frozen=True, slots=True)
class _Element:
    hop: _Hop
    proto: str | None
    host: str | None


def _parse_forwarded(values: list[str]) -> list[_Element]:
    text = _joined(values, "Forwarded")
    elements: list[_Element] = []
    pairs: dict[str, str] = {}
    position = 0
    while True:
        pair = _PAIR.match(text, position)
        if pair is None:
            raise _Malformed(f"Forwarded is malformed at {_show(text[position:])}")
        name, value = pair[1].lower(), pair[2]
        if value.startswith('"'):
            value = _QUOTED_PAIR.sub(r"\1", value[1:-1])
        if name in pairs:
            raise _Malformed(f"Forwarded element repeats the parameter {name!r}")
        pairs[name] = value
        position = pair.end()
        separator = text[position : position + 1]
        if separator == ";":
            position += 1
            continue
        if separator not in (",", ""):
            raise _Malformed(f"Forwarded is malformed at {_show(text[position:])}")
        elements.append(_element(pairs))
        if len(elements) > MAX_HOPS:
            raise _Malformed(f"Forwarded has more than {MAX_HOPS} elements")
        if not separator:
            return elements
        pairs = {}
        position += 1


def _element(pairs: dict[str, str]) -> _Element:
    node = pairs.get("for")
    if node is None:
        raise _Malformed("Forwarded element has no for= parameter")
    return _Element(_parse_node(node), pairs.get("proto"), pairs.get("host"))


def _parse_node(node: str) -> _Hop:
    """An RFC 7239 node (`192.0.2.7`, `"192.0.2.7:80"`, `"[2001:db8::1]:4711"`) as a hop."""
    if node.lower() == "unknown" or node.startswith("_"):
        raise _Malformed(f"Forwarded for={_show(node)} hides the address, which is unusable")
    match = _NODE_V6.fullmatch(node) if node.startswith("[") else _NODE_V4.fullmatch(node)
    if match is None or (match[2] is not None and match[2].isdigit() and int(match[2]) > 65535):
        raise _Malformed(f"Forwarded for={_show(node)} is not an address with optional port")
    address = match[1]
    try:
        version, value = parse_address(address)
    except AddressError:
        raise _Malformed(f"Forwarded for={_show(node)} is not an IP address") from None
    if node.startswith("[") and ":" not in address:
        raise _Malformed(f"Forwarded for={_show(node)} has an IPv4 address in brackets")
    return version, value


def _parse_x_forwarded_for(values: list[str]) -> list[_Hop]:
    entries = _split(values, "X-Forwarded-For")
    hops: list[_Hop] = []
    for entry in entries:
        # No zone ids, ports or brackets: only a bare address is a well-formed entry.
        if not entry or "%" in entry or "[" in entry:
            raise _Malformed(f"X-Forwarded-For entry {_show(entry)} is not an IP address")
        try:
            hops.append(parse_address(entry))
        except AddressError:
            raise _Malformed(
                f"X-Forwarded-For entry {_show(entry)} is not an IP address "
                "(ports and brackets are not allowed)"
            ) from None
    return hops


def _entry_at(
    values: list[str],
    index: int,
    hop_count: int,
    check: Callable[[str | None, str], str | None],
    header: str,
) -> str | None:
    """The entry of an X-Forwarded-Proto/-Host header for the chosen hop, if it lines up."""
    if not values:
        return None
    entries = _split(values, header)
    if len(entries) != hop_count:
        return None
    checked: list[str | None] = [check(entry, header) for entry in entries]
    return checked[index]


def _check_proto(proto: str | None, where: str) -> str | None:
    if proto is None:
        return None
    if proto.lower() not in _PROTOS:
        raise _Malformed(f"{where} {_show(proto)} is not http or https")
    return proto.lower()


def _check_host(host: str | None, where: str) -> str | None:
    if host is None:
        return None
    match = _HOST.fullmatch(host)
    malformed = (
        match is None
        or len(host) > _MAX_HOSTNAME_CHARS + 6
        or (match["port"] is not None and int(match["port"]) > 65535)
        or (match["v6"] is not None and not _is_ipv6(match["v6"]))
    )
    if malformed:
        raise _Malformed(f"{where} {_show(host)} is not a host name or address with port")
    return host.lower()


def _is_ipv6(text: str) -> bool:
    try:
        return ":" in text and parse_address(text) is not None
    except AddressError:
        return False


def _split(values: list[str], header: str) -> list[str]:
    entries = [entry.strip(_OWS) for entry in _joined(values, header).split(",")]
    if len(entries) > MAX_HOPS:
        raise _Malformed(f"{header} has more than {MAX_HOPS} entries")
    if "" in entries:
        raise _Malformed(f"{header} has an empty entry")
    return entries


def _joined(values: list[str], header: str) -> str:
    if not all(isinstance(value, str) for value in values):
        raise _Malformed(f"{header} has a value that is not text")
    text = ",".join(values)
    if len(text) > MAX_HEADER_CHARS:
        raise _Malformed(f"{header} is longer than {MAX_HEADER_CHARS} characters")
    return text


def _values(values: Iterable[str] | str) -> list[str]:
    """Header values as a list; a lone string is one value, not a sequence of characters."""
    if isinstance(values, str):
        return [values]
    if values is None:
        return []
    try:
        return list(values)
    except TypeError:
        return [repr(values)]


def _canonical(version: IPVersion, value: int) -> str:
    if version == 4:
        return str(ipaddress.IPv4Address(value))
    return str(ipaddress.IPv6Address(value))


def _show(text: str) -> str:
    """Quote header text for an error message, cut short and with control chars escaped."""
    if len(text) > _SHOWN_CHARS:
        text = text[:_SHOWN_CHARS] + "..."
    return repr(text)
