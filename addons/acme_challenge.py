"""The ACME HTTP-01 window on the web port: answer a pending token, close everything else
from a client the allowlist did not admit.

The rules are :mod:`gateway.policy.acme_challenge`; this addon gathers the facts, asks,
and acts:

- :meth:`admit_outside` is asked by the connection guard when the allowlist refuses an
  address; while an order is pending it admits the connection to the web listener and
  remembers it as *outside* - at most :data:`MAX_WINDOW_CONNECTIONS` at a time, from all
  addresses together (the CA needs a handful; anyone can be outside).
- The connection registry marks such a connection (:meth:`came_through`) and re-checks it
  with :meth:`keeps` - the same rule the guard asked - on every policy reload and on its
  timer, so it stays while the order is pending and is closed when the order ends.
- An outside connection's first bytes are screened before anything parses them
  (:func:`~gateway.policy.acme_challenge.screen_outside_bytes`): only a whole challenge
  request head goes on to HTTP, so mitmproxy's own answers to malformed requests never
  reach an outside client. TLS fails that screen; an outside client that reaches a TLS
  ClientHello anyway is cut off there (no ServerHello).
- ``requestheaders`` (before the login, the HTTPS redirect and every other addon):
  *answer* sends the key authorization (``Connection: close`` for an outside client) and
  audits it (with the client address a trusted proxy reported, and the token cut as
  :func:`gateway.logs.loggable_path` cuts it everywhere); *close* kills the flow and
  closes the connection - no status line, and the body is never read; *pass* leaves the
  request to the ordinary rules.
"""

from __future__ import annotations

from collections.abc import Callable

from mitmproxy import connection, http, tls
from mitmproxy.proxy import layer

from addons.base import DENIED, close_client, fail_closed, listener_of, logger
from addons.client_address import forwarding_headers
from gateway import logs
from gateway.acme.board import ChallengeBoard
from gateway.policy.acme_challenge import (
    ChallengeAction,
    ChallengeFacts,
    Screening,
    admit_outside_connection,
    decide_challenge_request,
    screen_outside_bytes,
)
from gateway.policy.forwarded import resolve_client
from gateway.proxy.state import ProxyState

# Connections admitted through the window at once, from every outside address together.
MAX_WINDOW_CONNECTIONS = 32


def _has_body(request: http.Request) -> bool:
    if "transfer-encoding" in request.headers:
        return True
    return request.headers.get("content-length", "0").strip() not in ("", "0")


class AcmeChallenge:
    def __init__(
        self,
        state: ProxyState,
        board: ChallengeBoard,
        *,
        record_audit: Callable[..., None] | None = None,
    ) -> None:
        self.state = state
        self.board = board
        self.record_audit = record_audit
        # Ids of the connections admitted only through the window, and of those among
        # them whose first bytes were a whole challenge request head.
        self.outside: set[str] = set()
        self.screened: set[str] = set()

    def admit_outside(self, client: connection.Client, listener: str) -> bool:
        """May this connection, refused by the allowlist, come in through the window?"""
        if not self.keeps(listener) or len(self.outside) >= MAX_WINDOW_CONNECTIONS:
            return False
        self.outside.add(client.id)
        return True

    def keeps(self, listener: str) -> bool:
        """Does the window admit an outside connection to ``listener`` now?"""
        return admit_outside_connection(listener, pending=self.board.any_pending())

    def came_through(self, client: connection.Client) -> bool:
        """Was this connection admitted only through the window?"""
        return client.id in self.outside

    def _client_address(self, flow: http.HTTPFlow) -> str:
        """The client's address: the one a trusted proxy reported, else the peer's."""
        peer = flow.client_conn.peername[0] if flow.client_conn.peername else ""
        sent = forwarding_headers(flow.request.headers.fields)
        result = resolve_client(
            peer,
            self.state.policy.trusted_proxies,
            forwarded=sent[b"forwarded"],
            x_forwarded_for=sent[b"x-forwarded-for"],
            x_forwarded_proto=sent[b"x-forwarded-proto"],
            x_forwarded_host=sent[b"x-forwarded-host"],
        )
        return peer if result.error else result.client

    def client_disconnected(self, client: connection.Client) -> None:
        self.outside.discard(client.id)
        self.screened.discard(client.id)

    @fail_closed
    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        """An outside connection's first bytes, before anything parses them."""
        client = nextlayer.context.client
        if client.id not in self.outside or client.id in self.screened:
            return
        verdict = screen_outside_bytes(nextlayer.data_client())
        if verdict is Screening.ADMIT:
            self.screened.add(client.id)
        elif verdict is Screening.WAIT:
            nextlayer.layer = None  # ask again when more bytes came
        else:
            nextlayer.layer = None
            self.state.count_denial("acme_window")
            client.error = "refused: acme_window"
            close_client(client)

    @fail_closed
    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        client = data.context.client
        if client.id in self.outside:
            self.state.count_denial("acme_window")
            client.error = "refused: acme_window"
            close_client(client)

    @fail_closed
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        client = flow.client_conn
        listener = listener_of(self.state, client)
        outside = client.id in self.outside
        facts = ChallengeFacts(
            listener=listener.name if listener is not None else "",
            over_tls=client.tls_established,
            method=flow.request.method,
            path=flow.request.path,
            allowlisted=not outside,
            has_body=_has_body(flow.request),
        )
        decision = decide_challenge_request(facts, self.board.pending)
        if decision.action is ChallengeAction.PASS:
            return
        if decision.action is ChallengeAction.CLOSE:
            flow.metadata[DENIED] = "acme_window"
            self.state.count_denial("acme_window")
            flow.kill()
            close_client(client)
            return
        flow.metadata[DENIED] = "acme_challenge"
        headers = {"Content-Type": "application/octet-stream", "Cache-Control": "no-store"}
        if outside:
            headers["Connection"] = "close"
        flow.response = http.Response.make(200, decision.key_authorization.encode(), headers)
        address = self._client_address(flow)
        path = logs.loggable_path(flow.request.path)
        logger.info("answered the ACME challenge %s for %s", path, address)
        if self.record_audit is not None:
            self.record_audit(
                "system",
                "acme.challenge_answered",
                client=address,
                path=path,
                allowlisted=not outside,
            )
