"""Protocol upgrades: which requests may switch protocols, and which ``101`` reaches a client.

Asks :mod:`gateway.policy.upgrade` and acts, on every listener:

- ``requestheaders`` (before any address or login check reads the request): classifies the
  ``Upgrade`` lines and records the answer in ``flow.metadata`` (:func:`upgrade_kind`), so
  every later check (the Origin rule, the login decision, the HTTPS redirect, the
  registration of a WebSocket with its credential) reads the same answer. ``other``
  upgrades are refused with 400; for the rest ``Upgrade``/``Connection`` are rewritten to
  say exactly what was decided.
- ``responseheaders``: a ``101`` that does not switch an admitted WebSocket request to
  ``websocket`` is cut off - the flow is killed, the client's connection closed, nothing of
  the answer reaches the client - logged as a warning and audited
  (``proxy.unadmitted_switch``). With mitmproxy's ``rawtcp``
  off (``gateway/proxy/engine.py``) no 101 could become a raw tunnel anyway; this is the
  gateway deciding from its own facts instead of relying on that alone.
"""

from __future__ import annotations

from collections.abc import Callable

from mitmproxy import http

from addons.base import DENIED, close_client, deny, fail_closed, logger
from addons.client_address import CLIENT_ADDRESS
from gateway import logs
from gateway.policy.upgrade import (
    UpgradeKind,
    forwarded_connection,
    requested_upgrade,
    switch_allowed,
)
from gateway.proxy.state import ProxyState

UPGRADE = "cemm_gateway.upgrade"
# Set by the authentication addon once a WebSocket request is admitted and registered.
WEBSOCKET_ADMITTED = "cemm_gateway.websocket_admitted"


def upgrade_kind(flow: http.HTTPFlow) -> UpgradeKind:
    """What this flow's request asks for, as decided in ``requestheaders``."""
    kind: UpgradeKind = flow.metadata.get(UPGRADE, "none")
    return kind


def wants_websocket(flow: http.HTTPFlow) -> bool:
    return upgrade_kind(flow) == "websocket"


class Upgrades:
    def __init__(
        self, state: ProxyState, *, record_audit: Callable[..., None] | None = None
    ) -> None:
        self.state = state
        # Queues an audit entry (written off the event loop: gateway/services/recorder.py).
        self.record_audit = record_audit

    @fail_closed
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        headers = flow.request.headers
        upgrade, connection_lines = _upgrade_and_connection(headers.fields)
        kind = requested_upgrade(upgrade)
        flow.metadata[UPGRADE] = kind
        if flow.metadata.get(DENIED):
            return
        if kind == "other":
            deny(self.state, flow, 400, "unsupported_upgrade")
            return
        if not upgrade and not any("upgrade" in line.lower() for line in connection_lines):
            return  # an ordinary request, forwarded as it came (most requests: no rewrite)
        connection = forwarded_connection(connection_lines, kind)
        if kind == "websocket":
            headers["Upgrade"] = "websocket"
        else:
            headers.pop("upgrade", None)
        if connection is None:
            headers.pop("connection", None)
        else:
            headers["Connection"] = connection

    @fail_closed
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        if response is None or response.status_code != 101:
            return
        if switch_allowed(
            upgrade_kind(flow),
            bool(flow.metadata.get(WEBSOCKET_ADMITTED)),
            response.headers.get("upgrade", ""),
        ):
            return
        self.state.count_denial("unadmitted_switch")
        flow.metadata[DENIED] = "unadmitted_switch"
        logger.warning(
            "cut off a 101 answer to %s %s (upgrade %r, answered %r): the gateway admitted "
            "no such switch",
            flow.request.method,
            logs.loggable_path(flow.request.path),
            upgrade_kind(flow),
            response.headers.get("upgrade", ""),
        )
        flow.kill()
        close_client(flow.client_conn)
        if self.record_audit is not None:
            self.record_audit(
                "system",
                "proxy.unadmitted_switch",
                client=flow.metadata.get(CLIENT_ADDRESS, flow.client_conn.peername[0]),
                path=logs.loggable_path(flow.request.path),
                requested=upgrade_kind(flow),
                answered=response.headers.get("upgrade", ""),
            )


def _upgrade_and_connection(
    fields: tuple[tuple[bytes, bytes], ...],
) -> tuple[list[str], list[str]]:
    """Every ``Upgrade`` and every ``Connection`` value, in one pass over the head (decoded
    as ``Headers.get_all`` decodes them; one pass instead of two scans)."""
    upgrade: list[str] = []
    connection: list[str] = []
    for name, value in fields:
        lowered = name.lower()
        if lowered == b"upgrade":
            upgrade.append(value.decode("utf-8", "surrogateescape"))
        elif lowered == b"connection":
            connection.append(value.decode("utf-8", "surrogateescape"))
    return upgrade, connection
