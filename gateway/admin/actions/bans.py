"""Bans as the admin app shows and lifts them."""

from __future__ import annotations

import time

from gateway.admin.caller import Caller
from gateway.admin.models import BanOut
from gateway.admin.views import ban_out
from gateway.services import bans
from gateway.web.context import WebContext


async def list_bans(context: WebContext) -> list[BanOut]:
    return [ban_out(ban) for ban in await context.db.run(bans.list_bans, now=time.time())]


async def lift_ban(context: WebContext, caller: Caller, ban_id: int) -> BanOut:
    lifted = await context.db.run(
        bans.lift_ban, ban_id, actor=caller.user_name, client_address=caller.address
    )
    return ban_out(lifted)
