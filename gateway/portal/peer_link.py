"""``/.gateway/peer/<token>``: a one-time link that moves a WireGuard configuration to a
phone, without a login - the token is the secret.

The token is 256 bits of randomness (only its hash is stored), works once, and expires 15
minutes after it was made. Attempts are limited per client (:class:`AttemptLimiter`), so
guessing is pointless even before counting the bits. The page shows the configuration as a
QR code (for the WireGuard app's scanner), as text, and as a ``.conf`` download built into
the page (a second request would need a second use of the link).
"""

from __future__ import annotations

import base64
import sqlite3
import time
from collections import OrderedDict, deque
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from gateway.auth.bruteforce import ban_key_for_address
from gateway.auth.totp import qr_svg
from gateway.services import peers
from gateway.web.context import WebContext, client_address
from gateway.wireguard.manager import WireguardManager

router = APIRouter(prefix="/.gateway")
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")

ATTEMPTS_PER_MINUTE = 10
MAX_TRACKED_CLIENTS = 10_000


class AttemptLimiter:
    """At most ``limit`` attempts per client in any ``window`` seconds, in bounded memory.
    A client is what the login's brute-force guard counts: an IPv4 address, or an IPv6
    address's /64 (anyone with IPv6 has a whole /64 to send from).

    At most ``max_tracked`` clients are tracked, each with at most ``limit`` times: a
    refused attempt is not counted, and the client is let in again once its oldest counted
    attempt leaves the window. Clients are kept in the order of their latest counted
    attempt, so those whose attempts have all left the window are forgotten first, at
    little cost, on every call.

    A client that still has an attempt in the window is never forgotten to make room:
    that would hand it a fresh count, and anyone sending from more than ``max_tracked``
    addresses could then try without limit. When every place is taken by such clients,
    the clients without a place share one more count of ``limit``, until places come
    free as the window moves on.
    """

    def __init__(
        self,
        limit: int = ATTEMPTS_PER_MINUTE,
        window: float = 60.0,
        max_tracked: int = MAX_TRACKED_CLIENTS,
    ) -> None:
        if limit < 1 or max_tracked < 1:
            raise ValueError("limit and max_tracked must be at least 1")
        self.limit = limit
        self.window = window
        self.max_tracked = max_tracked
        self._attempts: OrderedDict[str, deque[float]] = OrderedDict()
        self._shared: deque[float] = deque()

    def __len__(self) -> int:
        """How many clients are tracked."""
        return len(self._attempts)

    def __contains__(self, client: object) -> bool:
        return client in self._attempts

    def allow(self, client: str, now: float) -> bool:
        """Count an attempt by ``client`` at ``now`` (never earlier than the last call's);
        False, and not counted, when the client is over the limit."""
        cutoff = now - self.window
        # Oldest latest attempt first: the clients to forget are at the front.
        while self._attempts and next(iter(self._attempts.values()))[-1] <= cutoff:
            self._attempts.popitem(last=False)
        recent = self._attempts.get(client)
        if recent is None:
            if len(self._attempts) < self.max_tracked:
                recent = self._attempts[client] = deque()
            else:
                recent = self._shared
        while recent and recent[0] <= cutoff:
            recent.popleft()
        if len(recent) >= self.limit:
            return False
        recent.append(now)
        if recent is not self._shared:
            self._attempts.move_to_end(client)
        return True


_limiter = AttemptLimiter()


def _config_for(
    conn: sqlite3.Connection, token: str, manager: WireguardManager
) -> tuple[str, str] | None:
    name = peers.consume_link(conn, token)
    if name is None:
        return None
    text = peers.client_config(
        conn,
        name,
        settings=manager.settings,
        vault=manager.vault,
        server_public_key=manager.server_public_key,
    )
    return name, text


@router.get("/peer/{token}")
async def peer_link(request: Request, token: str) -> Response:
    context: WebContext = request.app.state.context
    manager = getattr(request.app.state, "wireguard", None)
    not_found = templates.TemplateResponse(
        request,
        "message.html",
        {
            "title": "Link not valid",
            "message": "This link was used already, has expired, or "
            "never existed. Ask for a new one.",
            "link_href": None,
        },
        status_code=404,
    )
    if manager is None or len(token) > 100:
        return not_found
    if not _limiter.allow(ban_key_for_address(client_address(request)), time.monotonic()):
        return Response(
            "Too many attempts; wait a minute.", status_code=429, headers={"Retry-After": "60"}
        )
    try:
        found = await context.db.run(_config_for, token, manager)
    except peers.PeerError:
        found = None
    if found is None:
        return not_found
    name, text = found
    download = "data:application/octet-stream;base64," + base64.b64encode(text.encode()).decode()
    return templates.TemplateResponse(
        request,
        "peer_config.html",
        {
            "name": name,
            "config": text,
            "qr_svg": qr_svg(text),
            "download": download,
            "filename": f"{''.join(c if c.isalnum() else '-' for c in name)}.conf",
        },
        headers={"Cache-Control": "no-store"},
    )
