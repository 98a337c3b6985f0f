"""API tokens as the admin app shows and changes them."""

from __future__ import annotations

import time

from gateway import durations
from gateway.admin.caller import Caller
from gateway.admin.models import TokenOut
from gateway.admin.views import token_out
from gateway.services import api_tokens
from gateway.web.context import WebContext


async def list_tokens(context: WebContext, *, user: str | None = None) -> list[TokenOut]:
    now = time.time()
    found = await context.db.run(api_tokens.list_tokens, user_name=user)
    return [token_out(token, now=now) for token in found]


async def create_token(
    context: WebContext,
    caller: Caller,
    *,
    user: str,
    name: str,
    read_only: bool,
    expires: str,
) -> tuple[str, TokenOut]:
    """A new token for ``user``: the token itself (shown once) and its record."""
    expires_in = durations.parse_expiry(expires)
    token, record = await context.db.run(
        api_tokens.create_token,
        user,
        name=name.strip(),
        read_only=read_only,
        expires_in=expires_in,
        actor=caller.user_name,
        client_address=caller.address,
    )
    context.auth_changed()
    return token, token_out(record)


async def revoke_token(context: WebContext, caller: Caller, token_id: str) -> None:
    await context.db.run(
        api_tokens.revoke_token, token_id, actor=caller.user_name, client_address=caller.address
    )
    context.auth_changed()
