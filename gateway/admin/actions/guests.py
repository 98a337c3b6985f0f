"""Guest links as the admin app shows, makes and revokes them."""

from __future__ import annotations

import time
from dataclasses import dataclass

from gateway.admin.actions.peers import web_url
from gateway.admin.caller import Caller
from gateway.qr import qr_svg
from gateway.services import guests
from gateway.web.context import WebContext


@dataclass(frozen=True)
class MadeLink:
    """A new link: its whole URL (shown once), a QR code of it, and its record."""

    url: str
    qr_svg: str
    link: guests.GuestLink


async def list_links(context: WebContext) -> list[guests.GuestLink]:
    return await context.db.run(guests.list_links)


async def create_link(
    context: WebContext,
    caller: Caller,
    *,
    name: str,
    role: str,
    expires: str,
    browsers: int,
    host: str | None,
) -> MadeLink:
    deadline = guests.parse_deadline(expires, now=time.time())
    token, link = await context.db.run(
        guests.create_link,
        name,
        role=role,
        expires_at=deadline,
        browsers=browsers,
        actor=caller.user_name,
        client_address=caller.address,
    )
    url = web_url(context, host, guests.LINK_PATH + token)
    return MadeLink(url, qr_svg(url), link)


async def revoke_link(context: WebContext, caller: Caller, link_id: int) -> guests.GuestLink:
    link = await context.db.run(
        guests.revoke_link, link_id, actor=caller.user_name, client_address=caller.address
    )
    context.auth_changed()
    return link
