"""Small network helpers: free ports (the demo, the tests) and the machine's own names."""

from __future__ import annotations

import ipaddress
import itertools
import secrets
import socket
from pathlib import Path

from gateway.policy.names import ANY_ADDRESS

# Below Linux's default range for the local ports of outgoing connections (32768-60999): a
# port chosen here is not taken by a connection made before the caller binds it.
_CHOSEN_PORTS = (20000, 32768)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the caller binds it soon after), drawn below
    the range the kernel gives outgoing connections, so that several processes starting
    servers at once (parallel tests) rarely meet on one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    low, high = _CHOSEN_PORTS
    for _ in range(200):
        port = low + secrets.randbelow(high - low)
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def machine_names(listen_host: str) -> list[str]:
    """The names a browser may use for this machine on ``listen_host``: that address, or
    (every address) the machine's addresses, host name, ``<hostname>.local`` and
    ``localhost``. Never raises; what cannot be read is left out."""
    if listen_host not in ANY_ADDRESS:
        return [listen_host]
    names = ["localhost", "127.0.0.1", "::1"]
    try:
        hostname = socket.gethostname()
    except OSError:
        hostname = ""
    if hostname:
        short = hostname.split(".", 1)[0]
        names += [hostname, short, f"{short}.local"]
    return names + local_addresses()


def local_addresses() -> list[str]:
    """The machine's own IPv4 and IPv6 addresses, read from ``/proc`` (Linux); [] elsewhere."""
    found: list[str] = []
    try:
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
    except OSError:
        lines = []
    for previous, line in itertools.pairwise(lines):
        # "|-- 192.168.1.10" followed by "/32 host LOCAL": an address of this machine.
        if line.strip() == "/32 host LOCAL" and "--" in previous:
            found.append(previous.split("--", 1)[1].strip())
    try:
        for entry in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = entry.split()[0]
            found.append(str(ipaddress.IPv6Address(int(raw, 16))))
    except (OSError, ValueError, IndexError):
        pass
    return sorted(set(found))
