"""The gateway's own names: which hosts and origins are the gateway itself.

A browser tells the gateway which page a request comes from (``Origin``, or
``Sec-Fetch-Site`` without it) and which name it used to reach it (``Host``). Both are
chosen by whoever wrote the page: a page on ``evil.example`` whose name an attacker points
at the gateway's address (DNS rebinding) sends ``Host: evil.example`` and
``Origin: http://evil.example``, which agree. So "the origin matches the Host" proves
nothing; the gateway compares against names it knows are its own:

- ``[listen] public_url`` (scheme, name and port people type, e.g.
  ``https://cemm.example.org``), and ``[auth] public_hostnames`` (``name`` or
  ``name:port``; without a port the scheme's default);
- the TLS certificate's names (``[tls] hostnames``);
- the listen address, or - listening on every address - the machine's own addresses, its
  host name, ``<hostname>.local`` and ``localhost``; and the WireGuard tunnel addresses.

An **origin** is the gateway's own when it is ``http`` or ``https`` with no path and either
is exactly one of the public URLs/names above (scheme, name and port), or names one of the
gateway's hosts with the port the page was served from (the web port for the web and ws
listeners - the CEMM's page opens the WebSocket - and the admin port for the admin app).
``Origin: null`` and malformed origins are never the gateway's own.

A **host** (``Host`` or a trusted proxy's ``X-Forwarded-Host``) is the gateway's own when
its name is one of the gateway's hosts, whatever its port (a router may forward another
port). Pure: the app gathers the machine's names (:func:`gateway.netutil.machine_names`)
and passes them in.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
ANY_ADDRESS = ("", "0.0.0.0", "::")


def _host_key(host: str) -> str:
    """A host name or address as compared here: lower-case, IPv6 without brackets, no
    trailing dot, an IPv4-mapped IPv6 address written as IPv4."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _split(value: str, scheme: str) -> tuple[str, int] | None:
    """``(host, port)`` of an authority ``name[:port]`` (port defaulting to ``scheme``'s)."""
    try:
        parts = urlsplit(f"{scheme}://{value}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return _host_key(parts.hostname), port or DEFAULT_PORTS[scheme]


@dataclass(frozen=True, slots=True)
class OwnNames:
    """The gateway's names (see the module's docstring)."""

    hosts: frozenset[str] = frozenset()
    origins: frozenset[tuple[str, str, int]] = frozenset()
    shown: tuple[str, ...] = field(default=(), compare=False)
    """The names as configured, for messages."""

    def is_own_host(self, host: str) -> bool:
        found = _split(host, "http") if host else None
        return found is not None and found[0] in self.hosts

    def is_own_origin(self, origin: str, *, page_port: int) -> bool:
        try:
            parts = urlsplit(origin.strip())
            port = parts.port
        except ValueError:
            return False
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
            return False
        if parts.query or parts.fragment or parts.username is not None:
            return False
        host = _host_key(parts.hostname)
        port = port or DEFAULT_PORTS[scheme]
        if (scheme, host, port) in self.origins:
            return True
        return host in self.hosts and port == page_port


def own_names(
    *,
    public_url: str = "",
    public_hostnames: Iterable[str] = (),
    tls_hostnames: Iterable[str] = (),
    addresses: Iterable[str] = (),
) -> OwnNames:
    """The gateway's names from its settings and the addresses it answers on."""
    hosts: set[str] = set()
    origins: set[tuple[str, str, int]] = set()
    shown: list[str] = []
    if public_url:
        parts = urlsplit(public_url)
        scheme = parts.scheme.lower()
        found = _split(parts.netloc, scheme) if scheme in DEFAULT_PORTS else None
        if found is not None:
            hosts.add(found[0])
            origins.add((scheme, *found))
            shown.append(public_url)
    for name in public_hostnames:
        for scheme in DEFAULT_PORTS:
            found = _split(name, scheme)
            if found is not None:
                hosts.add(found[0])
                origins.add((scheme, *found))
        shown.append(name)
    for name in (*tls_hostnames, *addresses):
        if name and name not in ANY_ADDRESS:
            hosts.add(_host_key(name))
    return OwnNames(frozenset(hosts), frozenset(origins), tuple(shown))


def web_url(
    path: str,
    *,
    public_url: str,
    names: OwnNames,
    host: str | None,
    addresses: Iterable[str],
    tls: bool,
    web_port: int,
) -> str:
    """``path`` as a whole link on the gateway's web port, for links the gateway prints.

    ``[listen] public_url`` when set; otherwise the name the person asking used (``host``),
    when it is one of the gateway's own; otherwise the first of ``addresses`` a phone on the
    LAN can reach (a private IPv4 address before anything else).
    """
    if public_url:
        return public_url.rstrip("/") + path
    scheme = "https" if tls else "http"
    hostname = None
    if host and names.is_own_host(host):
        found = _split(host, "http")
        hostname = found[0] if found else None
    if hostname is None:
        hostname = _reachable(addresses)
    if ":" in hostname:
        hostname = f"[{hostname}]"
    shown_port = "" if web_port == DEFAULT_PORTS[scheme] else f":{web_port}"
    return f"{scheme}://{hostname}{shown_port}{path}"


def _reachable(addresses: Iterable[str]) -> str:
    def rank(name: str) -> tuple[int, str]:
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return (1 if name != "localhost" else 4, name)
        if address.is_loopback or address.is_link_local:
            return (4, name)
        return (0 if address.version == 4 and address.is_private else 2, name)

    ranked = sorted((_host_key(a) for a in addresses if a and a not in ANY_ADDRESS), key=rank)
    return ranked[0] if ranked else "localhost"
