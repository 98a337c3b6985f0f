"""User accounts as the admin app shows and changes them."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.admin.caller import Caller
from gateway.admin.models import UserOut
from gateway.admin.views import user_out
from gateway.auth import passwords
from gateway.services import passkeys, sessions, users
from gateway.web.context import WebContext


async def list_users(context: WebContext) -> list[UserOut]:
    return [user_out(user) for user in await context.db.run(users.list_users)]


async def get_user(context: WebContext, name: str) -> UserOut:
    return user_out(await context.db.run(users.require_user, name))


@dataclass(frozen=True)
class AddedUser:
    user: UserOut
    generated_password: str | None


async def add_user(
    context: WebContext, caller: Caller, *, name: str, role: str, password: str | None
) -> AddedUser:
    """Add the account; without a password one is generated, to show once."""
    generated = None
    if not password:
        password = generated = passwords.generate_password(username=name.strip())
    user = await context.db.run(
        users.add_user,
        name.strip(),
        role=role,
        password=password,
        actor=caller.user_name,
        client_address=caller.address,
    )
    return AddedUser(user_out(user), generated)


async def change_user(
    context: WebContext,
    caller: Caller,
    name: str,
    *,
    role: str | None = None,
    disabled: bool | None = None,
) -> UserOut:
    changed = await context.db.run(
        users.change_user,
        name,
        role=role,
        disabled=disabled,
        actor=caller.user_name,
        client_address=caller.address,
    )
    context.auth_changed()
    return user_out(changed)


async def set_password(
    context: WebContext, caller: Caller, name: str, *, password: str | None
) -> str | None:
    """Set (or generate) a new password; returns the generated one, to show once."""
    user = await context.db.run(users.require_user, name)
    generated = None
    if not password:
        password = generated = passwords.generate_password(username=user.name)
    await context.db.run(
        users.set_password,
        user.name,
        password,
        actor=caller.user_name,
        # Resetting one's own password here keeps the session doing it.
        keep_session=caller.session_id,
        client_address=caller.address,
    )
    context.auth_changed()
    return generated


async def reset_second_factor(context: WebContext, caller: Caller, name: str) -> None:
    await context.db.run(
        passkeys.reset_second_factor, name, actor=caller.user_name, client_address=caller.address
    )


async def remove_user(context: WebContext, caller: Caller, name: str) -> None:
    await context.db.run(
        users.remove_user, name, actor=caller.user_name, client_address=caller.address
    )
    context.auth_changed()


async def revoke_user_sessions(context: WebContext, caller: Caller, name: str) -> int:
    ended: int = await context.db.run(
        sessions.revoke_sessions_of, name, actor=caller.user_name, client_address=caller.address
    )
    context.auth_changed()
    return ended
