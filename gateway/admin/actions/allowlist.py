"""The allowlist as the admin app shows and changes it."""

from __future__ import annotations

import time

from gateway import durations
from gateway.admin.caller import Caller
from gateway.admin.models import AllowlistEntryOut, AllowlistOut
from gateway.admin.views import entry_out
from gateway.services import allowlist
from gateway.services.allowlist import OwnAddress
from gateway.web.context import WebContext


def default_networks(context: WebContext) -> list[str]:
    """The networks always admitted on the web and ws ports, as the proxy enforces them:
    ``[allowlist] default_networks`` plus what the gateway adds itself (the VPN subnet)."""
    return [
        str(entry.network)
        for entry in context.state.policy.allowlist.entries
        if isinstance(entry.key, str) and entry.key.startswith("default:")
    ]


def _own_address(context: WebContext, caller: Caller, *, confirmed: bool) -> OwnAddress:
    return OwnAddress(caller.address, default_networks(context), confirmed=confirmed)


async def allowlist_view(context: WebContext, caller: Caller) -> AllowlistOut:
    entries = await context.db.run(allowlist.list_entries)
    now = time.time()
    return AllowlistOut(
        your_address=caller.address,
        default_networks=default_networks(context),
        admin_networks=list(context.settings.allowlist.admin_networks),
        entries=[entry_out(entry, address=caller.address, now=now) for entry in entries],
    )


async def save_allowlist_entry(
    context: WebContext,
    caller: Caller,
    *,
    network: str,
    label: str,
    expires: str,
    confirm_lockout: bool,
    confirm_wide: bool = False,
) -> tuple[AllowlistEntryOut, bool]:
    """Add the network, or change its label and expiry if it is listed; returns the entry
    and whether it was listed already."""
    saved = await context.db.run(
        allowlist.save_entry,
        network,
        actor=caller.user_name,
        label=label.strip(),
        expires_in=durations.parse_expiry(expires),
        client_address=caller.address,
        own_address=_own_address(context, caller, confirmed=confirm_lockout),
        confirm_wide=confirm_wide,
    )
    return entry_out(saved.entry, address=caller.address), saved.previous is not None


async def remove_allowlist_entry(
    context: WebContext, caller: Caller, entry_id: int, *, confirm_lockout: bool
) -> str:
    """Remove the entry; returns its network."""
    network: str = await context.db.run(
        allowlist.remove_entry_by_id,
        entry_id,
        actor=caller.user_name,
        client_address=caller.address,
        own_address=_own_address(context, caller, confirmed=confirm_lockout),
    )
    return network
