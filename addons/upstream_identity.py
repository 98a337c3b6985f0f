"""Nothing reaches a device that is not the CEMM the gateway was told about.

Only with ``[upstream] mac`` set (``ProxyState.upstream.mac``); otherwise both hooks do
nothing. The upstream monitor (:mod:`gateway.upstream.monitor`) decides *where* the CEMM
is; this addon enforces the two rules that must hold for every single request:

- **No target, no forwarding** (``requestheaders``): while the CEMM's identity is not
  confirmed, ``ProxyState.upstream.host`` is empty and every request meant for the CEMM
  is answered 503 with the page that says what the gateway is doing about it. Requests
  for the gateway's own app (the admin port, ``/.gateway/``) are not affected. Runs after
  the access checks, so a client that may not use the CEMM learns nothing about it.
- **The right device at the link layer** (``server_connected``): a new connection to the
  CEMM is checked against the kernel's neighbour entry for the peer *after* the TCP
  handshake and *before* mitmproxy sends a byte of the request (mitmproxy awaits this
  hook first). If the MAC that completed the handshake is not the configured one - the
  CEMM left, another device took its address, and the monitor has not checked yet - the
  connection is aborted (the client gets 502), the target is emptied and the monitor
  notices within a quarter of a second. No entry (the CEMM is routed, not on the local
  link) means no opinion: the monitor's identity check is then the only line.

Must run after the authentication addon and before the forwarding addon.
"""

from __future__ import annotations

import logging

from mitmproxy import ctx, http
from mitmproxy.proxy import server_hooks

from addons.authentication import TO_APP
from addons.base import DENIED, deny, fail_closed, listener_of
from gateway.proxy.state import ProxyState
from gateway.upstream.discovery import link_layer_address

logger = logging.getLogger("cemm_gateway.proxy")

UNCONFIRMED = "upstream_unconfirmed"
LINK_MISMATCH = "upstream_link_mismatch"


class UpstreamIdentity:
    def __init__(self, state: ProxyState) -> None:
        self.state = state

    @fail_closed
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(DENIED) or flow.response is not None:
            return
        upstream = self.state.upstream
        if not upstream.mac or upstream.host:
            return
        listener = listener_of(self.state, flow.client_conn)
        if listener is None or listener.name == "admin" or flow.metadata.get(TO_APP):
            return
        deny(self.state, flow, 503, UNCONFIRMED)

    async def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        upstream = self.state.upstream
        peer = data.server.peername
        if not upstream.mac or peer is None:
            return
        address = data.server.address
        if address is not None and (address[0], address[1]) == (
            upstream.admin_host,
            upstream.admin_port,
        ):
            return
        try:
            seen = await link_layer_address(str(peer[0]))
            if seen is None or seen == upstream.mac:
                return
            logger.warning(
                "refused a connection to %s: the device that answered has MAC %s, not the "
                "CEMM's %s; forwarding nothing until the CEMM is confirmed again",
                peer[0],
                seen,
                upstream.mac,
            )
            # Read again: the target may have moved while the neighbour table was asked.
            current = self.state.upstream.host
            if current == str(peer[0]) or (address is not None and current == address[0]):
                self.state.set_upstream_host("")
        except Exception:
            logger.exception("checking the upstream's link-layer address failed; refusing")
        self.state.count_denial(LINK_MISMATCH)
        _abort(data)


def _abort(data: server_hooks.ServerConnectionHookData) -> None:
    """Cut the server connection before anything is written to it."""
    proxyserver = ctx.master.addons.get("proxyserver")
    handler = proxyserver.connections.get(data.client.id) if proxyserver else None
    io = handler.transports.get(data.server) if handler is not None else None
    if io is not None and io.writer is not None:
        transport = getattr(io.writer, "transport", None)
        if transport is not None:
            # abort(), not close(): later writes are dropped instead of sent.
            transport.abort()
            return
        io.writer.close()
