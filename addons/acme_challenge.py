"""The ACME HTTP-01 window on the web port: answer a pending token, close everything else
from a client the allowlist did not admit.

The rules are :mod:`gateway.policy.acme_challenge`; this addon gathers the facts, asks,
and acts:

- :meth:`admit_outside` is asked by the connection guard when the allowlist refuses an
  address; while an order is pending it admits the connection to the web listener and
  remembers it as *outside*.
- An outside connection's first bytes are screened before anything parses them
  (:func:`~gateway.policy.acme_challenge.screen_outside_bytes`): only a whole challenge
  request head goes on to HTTP, so mitmproxy's own answers to malformed requests never
  reach an outside client. TLS fails that screen; an outside client that reaches a TLS
  ClientHello anyway is cut off there (no ServerHello).
- ``requestheaders`` (before the login, the HTTPS redirect and every other addon):
  *answer* sends the key authorization (``Connection: close`` for an outside client) and
  audits it; *close* kills the flow and closes the connection - no status line, and the
  body is never read; *pass* leaves the request to the ordinary rules.
"""

from __future__ import annotations

from collections.abc import Callable

from mitmproxy import connection, http, tls
from mitmproxy.proxy import layer

from addons.base import DENIED, close_client, fail_closed, listener_of, logger
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
from gateway.proxy.state import ProxyState


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
        if not admit_outside_connection(listener, pending=self.board.any_pending()):
            return False
        self.outside.add(client.id)
        return True

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
        peer = client.peername[0] if client.peername else ""
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
        logger.info("answered the ACME challenge %s for %s", decision.token[:8], peer)
        if self.record_audit is not None:
            self.record_audit(
                "system",
                "acme.challenge_answered",
                client=peer,
                path=logs.loggable_path(flow.request.path),
                allowlisted=not outside,
            )
