"""``GET /metrics``: the gateway's Prometheus metrics, on the admin listener.

Only the admin listener forwards paths outside ``/.gateway/`` to the web app, so this route
exists nowhere else. It checks its own credentials (the admin guard lets ``/metrics``
through for that reason, see :mod:`gateway.admin.security`), accepting either:

- ``Authorization: Bearer <token>`` with ``[metrics] scrape_token`` (or the contents of
  ``scrape_token_file``), compared in constant time - what a Prometheus server sends
  (``authorization: {credentials: ...}`` in its scrape config); or
- an admin's login session or API token, as for every other admin path.

Anything else gets 401 with ``WWW-Authenticate: Bearer``. The numbers come from
:mod:`gateway.metrics`.
"""

from __future__ import annotations

import hmac
import logging
import time
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from gateway import logs
from gateway.admin.security import authenticate
from gateway.metrics import (
    CONTENT_TYPE,
    EVENTS,
    REQUEST_DURATIONS,
    MetricsSnapshot,
    WireguardPeer,
    read_bans_active,
    render,
)
from gateway.policy.credentials import session_usable
from gateway.settings import MetricsSettings
from gateway.web.context import WebContext

logger = logging.getLogger("cemm_gateway.metrics")

router = APIRouter(include_in_schema=False)

_token_cache: dict[tuple[str, str], str] = {}


def scrape_token(settings: MetricsSettings) -> str:
    """The configured scrape token ("" if none); a token file is read once."""
    key = (settings.scrape_token, settings.scrape_token_file)
    if key not in _token_cache:
        token = settings.scrape_token
        if settings.scrape_token_file:
            try:
                token = Path(settings.scrape_token_file).read_text().strip()
            except OSError as error:
                logger.warning(
                    "metrics.scrape_token_file: cannot read %s (%s); /metrics accepts admin "
                    "logins only",
                    settings.scrape_token_file,
                    error.strerror,
                )
                token = ""
        if token:
            logs.register_secret(token)
        _token_cache[key] = token
    return _token_cache[key]


def authorized(context: WebContext, request: Request) -> bool:
    """The scrape token or an admin's credentials (also what ``/healthz`` details need)."""
    authorization = request.headers.get("authorization")
    if authorization is not None:
        expected = scrape_token(context.settings.metrics)
        scheme, _, value = authorization.partition(" ")
        if (
            expected
            and scheme.lower() == "bearer"
            and hmac.compare_digest(value.strip().encode(), expected.encode())
        ):
            return True
    caller = authenticate(context, request)
    return caller is not None and caller.role == "admin"


def _sessions_active(context: WebContext, now: float) -> int:
    auth = context.state.auth
    activity = context.state.session_activity
    return sum(
        1
        for info in auth.sessions.values()
        if session_usable(
            info, now=now, last_seen=activity.get(info.id, 0.0), idle_timeout=auth.idle_timeout
        )
    )


def _wireguard_peers(request: Request) -> list[WireguardPeer] | None:
    """The WireGuard manager's peers (``app.state.wireguard``), None when WireGuard is off."""
    manager = getattr(request.app.state, "wireguard", None)
    if manager is None:
        return None
    try:
        return [
            WireguardPeer(
                name=str(peer.name),
                latest_handshake=peer.latest_handshake,
                rx_bytes=int(peer.rx_bytes),
                tx_bytes=int(peer.tx_bytes),
            )
            for peer in manager.peer_status()
        ]
    except Exception:
        logger.exception("reading the WireGuard peers for /metrics failed")
        return []


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    context: WebContext = request.app.state.context
    if not authorized(context, request):
        return JSONResponse(
            {"error": "unauthorized", "detail": "send the scrape token or log in as an admin"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="cemm-gateway metrics"'},
        )
    now = time.time()
    bans_active = await context.db.run(read_bans_active, now=now)
    status = context.status()
    state = context.state
    snapshot = MetricsSnapshot(
        wireguard=_wireguard_peers(request),
        now=now,
        requests=dict(state.requests),
        denials=dict(state.denials),
        events=EVENTS.snapshot(),
        bans_active=bans_active,
        durations=REQUEST_DURATIONS,
        sessions_active=_sessions_active(context, now),
        connections_open=status.open_connections,
        websockets_open=status.open_websockets,
        upstream=state.cemm,
    )
    return Response(render(snapshot), media_type=CONTENT_TYPE)
