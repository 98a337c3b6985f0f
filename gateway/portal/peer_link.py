"""``/.gateway/peer/<token>``: a one-time link that moves a WireGuard configuration to a
phone, without a login - the token is the secret.

The token is 256 bits of randomness (only its hash is stored), works once, and expires 15
minutes after it was made. Every attempt is a guess through the one gate
(:mod:`gateway.portal.guesses`): an unknown token counts as a failure of the client's
address (IPv4, or IPv6 /64) like a wrong password, so an address that keeps guessing is
slowed and banned - for logins too - and a banned address gets 429 even for a good link.
The page shows the configuration as a QR code (for the WireGuard app's scanner), as text,
and as a ``.conf`` download built into the page (a second request would need a second use
of the link).
"""

from __future__ import annotations

import base64
import sqlite3

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway.i18n import gettext as _
from gateway.portal.guesses import GuessRefused, guess, refusal_headers
from gateway.portal.pages import message_page, templates
from gateway.qr import qr_svg
from gateway.services import peers
from gateway.wireguard.manager import WireguardManager

router = APIRouter(prefix="/.gateway")


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
    manager = getattr(request.app.state, "wireguard", None)
    not_found = message_page(
        request,
        title=_("Link not valid"),
        message=_("This link was used already, has expired, or never existed. Ask for a new one."),
        link_href=None,
        status_code=404,
    )
    usable = manager is not None and len(token) <= 100

    def verify(conn: sqlite3.Connection) -> tuple[str, str] | None:
        return _config_for(conn, token, manager) if usable and manager else None

    try:
        # A guess even where no link can match (WireGuard off, an overlong token).
        found = await guess(request, account="", verify=verify)
    except GuessRefused as refused:
        return Response(
            _("Too many attempts; try again later."),
            status_code=429,
            headers=refusal_headers(refused),
        )
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
