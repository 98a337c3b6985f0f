"""Which address a request really comes from, when the gateway sits behind another proxy.

Only when the TCP peer is one of ``[allowlist] trusted_proxies`` are ``Forwarded`` and
``X-Forwarded-For`` read (algorithm and edge cases: :mod:`gateway.policy.forwarded`); the
client they name must pass the same allowlist as a direct client, request by request.
Forwarding headers from any other peer are ignored for every decision (and replaced
before the request goes upstream, by :mod:`addons.forwarding`).
"""

from __future__ import annotations

from mitmproxy import http

from addons.base import DENIED, deny, fail_closed, listener_of
from addons.connection_registry import ConnectionRegistry
from gateway.policy.allowlist import decide_connection
from gateway.policy.forwarded import resolve_client
from gateway.proxy.state import ProxyState

CLIENT_ADDRESS = "cemm_gateway.client_address"
FORWARDED_PROTO = "cemm_gateway.forwarded_proto"
FORWARDED_HOST = "cemm_gateway.forwarded_host"


class ClientAddress:
    def __init__(self, state: ProxyState, registry: ConnectionRegistry) -> None:
        self.state = state
        self.registry = registry

    @fail_closed
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(DENIED):
            return
        listener = listener_of(self.state, flow.client_conn)
        if listener is None:
            deny(self.state, flow, 403, "unknown_listener")
            return
        peer = flow.client_conn.peername[0]
        policy = self.state.policy
        sent = forwarding_headers(flow.request.headers.fields)
        result = resolve_client(
            peer,
            policy.trusted_proxies,
            forwarded=sent[b"forwarded"],
            x_forwarded_for=sent[b"x-forwarded-for"],
            x_forwarded_proto=sent[b"x-forwarded-proto"],
            x_forwarded_host=sent[b"x-forwarded-host"],
        )
        if result.error:
            deny(self.state, flow, 400, "bad_forwarded_header")
            return
        if result.via_proxy:
            decision = decide_connection(result.client, policy.allowlist_for(listener.name))
            if not decision.allowed:
                deny(self.state, flow, 403, decision.reason)
                return
            self.registry.note_forwarded(flow.client_conn, result.client)
            flow.metadata[FORWARDED_PROTO] = result.proto
            flow.metadata[FORWARDED_HOST] = result.host
        flow.metadata[CLIENT_ADDRESS] = result.client


def forwarding_headers(fields: tuple[tuple[bytes, bytes], ...]) -> dict[bytes, list[str]]:
    """Every value of the four forwarding headers, in order, read in one pass over the head.

    Decoded as ``Headers.get_all`` decodes them; one pass instead of one scan per header.
    """
    found: dict[bytes, list[str]] = {name: [] for name in _FORWARDING}
    for name, value in fields:
        values = found.get(name.lower())
        if values is not None:
            values.append(value.decode("utf-8", "surrogateescape"))
    return found


_FORWARDING = (b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host")
