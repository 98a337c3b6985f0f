"""Passkeys as the admin pages and the JSON API ask for them: an account's, all, removing
one. The service (:mod:`gateway.services.passkeys`) checks and audits; its refusals reach
the edges as they are."""

from __future__ import annotations

from gateway.admin.caller import Caller
from gateway.services import passkeys
from gateway.services.passkeys import Passkey
from gateway.web.context import WebContext


async def list_passkeys(context: WebContext, *, user: str | None = None) -> list[Passkey]:
    found: list[Passkey] = await context.db.run(passkeys.list_passkeys, user_name=user)
    return found


async def remove_passkey(
    context: WebContext, caller: Caller, passkey_id: int, *, owner: str | None = None
) -> Passkey:
    removed: Passkey = await context.db.run(
        passkeys.remove_passkey,
        passkey_id,
        actor=caller.user_name,
        owner=owner,
        client_address=caller.address,
    )
    return removed
