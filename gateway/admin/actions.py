"""Every operation of the admin app, once: the JSON API and the pages both call these.

Each function runs the service-layer calls on the database worker (the service layer
holds every rule and writes every audit entry), records who did it and from which
address, tells the proxy when logins changed (so a revoked session's WebSockets close at
once), and turns a refusal of the service layer into an :class:`ApiError` with a fitting
status: 404 for something that does not exist, 409 for a conflict (the last admin, a
name taken, a self lock-out), 400 for invalid input.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway import durations
from gateway.admin.models import (
    AllowlistEntryOut,
    AllowlistOut,
    AuditEntryOut,
    BanOut,
    PeerAdded,
    PeerConfigOut,
    PeerLinkOut,
    PeerOut,
    SessionOut,
    TokenOut,
    UserOut,
)
from gateway.admin.security import ApiError, Caller
from gateway.admin.views import (
    audit_out,
    ban_out,
    entry_out,
    peer_out,
    session_out,
    token_out,
    user_out,
)
from gateway.auth import passwords
from gateway.netutil import machine_names
from gateway.policy import names
from gateway.services import allowlist, api_tokens, audit, bans, sessions, users
from gateway.services import peers as peer_service
from gateway.services.allowlist import AllowlistError, OwnAddress, SelfLockoutError
from gateway.services.api_tokens import TokenError
from gateway.services.bans import BanError
from gateway.services.peers import PeerError
from gateway.services.users import LastAdminError, OwnAccountError, UserError, UserExistsError
from gateway.web.context import WebContext
from gateway.wireguard.manager import WireguardManager


async def _run[T](context: WebContext, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return await context.db.run(function, *args, **kwargs)
    except SelfLockoutError as error:
        raise ApiError(
            409,
            "self_lockout",
            str(error),
            address=error.address,
            admitted_until=error.admitted_until,
        ) from None
    except LastAdminError as error:
        raise ApiError(409, "last_admin", str(error)) from None
    except OwnAccountError as error:
        raise ApiError(409, "own_account", str(error)) from None
    except UserExistsError as error:
        raise ApiError(409, "exists", str(error)) from None
    except (AllowlistError, UserError, TokenError, BanError, PeerError) as error:
        raise ApiError(400, "invalid", str(error)) from None


def _not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", what)


def _expiry(text: str) -> float | None:
    try:
        return durations.parse_expiry(text)
    except durations.DurationError as error:
        raise ApiError(400, "invalid", str(error)) from None


# -- allowlist --------------------------------------------------------------------------
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
    entries = await _run(context, allowlist.list_entries)
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
) -> tuple[AllowlistEntryOut, bool]:
    """Add the network, or change its label and expiry if it is listed; returns the entry
    and whether it was listed already."""
    saved = await _run(
        context,
        allowlist.save_entry,
        network,
        actor=caller.user_name,
        label=label.strip(),
        expires_in=_expiry(expires),
        client_address=caller.address,
        own_address=_own_address(context, caller, confirmed=confirm_lockout),
    )
    return entry_out(saved.entry, address=caller.address), saved.previous is not None


async def remove_allowlist_entry(
    context: WebContext, caller: Caller, entry_id: int, *, confirm_lockout: bool
) -> str:
    """Remove the entry; returns its network."""

    def remove(conn: sqlite3.Connection) -> str | None:
        entry = allowlist.get_entry(conn, entry_id)
        if entry is None:
            return None
        allowlist.remove_entry(
            conn,
            entry.network,
            actor=caller.user_name,
            client_address=caller.address,
            own_address=_own_address(context, caller, confirmed=confirm_lockout),
        )
        return entry.network

    network = await _run(context, remove)
    if network is None:
        raise _not_found(f"there is no allowlist entry {entry_id}; it may be removed already")
    return network


# -- users ------------------------------------------------------------------------------
async def list_users(context: WebContext) -> list[UserOut]:
    return [user_out(user) for user in await _run(context, users.list_users)]


async def get_user(context: WebContext, name: str) -> UserOut:
    user = await _run(context, users.get_user, name)
    if user is None:
        raise _not_found(f"there is no user '{name}'")
    return user_out(user)


@dataclass(frozen=True)
class AddedUser:
    user: UserOut
    generated_password: str | None


async def add_user(
    context: WebContext, caller: Caller, *, name: str, role: str, password: str | None
) -> AddedUser:
    generated = None
    if not password:
        password = generated = passwords.generate_password(username=name.strip())
    user = await _run(
        context,
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
    def change(conn: sqlite3.Connection) -> users.User | None:
        user = users.get_user(conn, name)
        if user is None:
            return None
        if role is not None and role != user.role:
            user = users.set_role(
                conn, user.name, role, actor=caller.user_name, client_address=caller.address
            )
        if disabled is not None and disabled != user.disabled:
            user = users.set_disabled(
                conn, user.name, disabled, actor=caller.user_name, client_address=caller.address
            )
        return user

    changed = await _run(context, change)
    if changed is None:
        raise _not_found(f"there is no user '{name}'")
    context.auth_changed()
    return user_out(changed)


async def set_password(
    context: WebContext, caller: Caller, name: str, *, password: str | None
) -> str | None:
    """Set (or generate) a new password; returns the generated one, to show once."""
    user = await get_user(context, name)
    generated = None
    if not password:
        password = generated = passwords.generate_password(username=user.name)
    await _run(
        context,
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
    user = await get_user(context, name)
    await _run(
        context,
        users.disable_totp,
        user.name,
        actor=caller.user_name,
        client_address=caller.address,
    )


async def remove_user(context: WebContext, caller: Caller, name: str) -> None:
    user = await get_user(context, name)
    await _run(
        context, users.remove_user, user.name, actor=caller.user_name, client_address=caller.address
    )
    context.auth_changed()


async def revoke_user_sessions(context: WebContext, caller: Caller, name: str) -> int:
    def revoke(conn: sqlite3.Connection) -> int | None:
        user = users.get_user(conn, name)
        if user is None:
            return None
        return sessions.revoke_user_sessions(
            conn, user, actor=caller.user_name, client_address=caller.address
        )

    ended = await _run(context, revoke)
    if ended is None:
        raise _not_found(f"there is no user '{name}'")
    context.auth_changed()
    return ended


# -- API tokens -------------------------------------------------------------------------
async def list_tokens(context: WebContext, *, user: str | None = None) -> list[TokenOut]:
    now = time.time()
    found = await _run(context, api_tokens.list_tokens, user_name=user)
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
    await get_user(context, user)
    token, record = await _run(
        context,
        api_tokens.create_token,
        user,
        name=name.strip(),
        read_only=read_only,
        expires_in=_expiry(expires),
        actor=caller.user_name,
        client_address=caller.address,
    )
    context.auth_changed()
    return token, token_out(record)


async def revoke_token(context: WebContext, caller: Caller, token_id: str) -> None:
    token = await _run(context, api_tokens.find_token, token_id)
    if token is None:
        raise _not_found(f"there is no API token '{token_id}'")
    if token.revoked_at is not None:
        raise ApiError(409, "already_revoked", f"the token '{token_id}' is already revoked")
    await _run(
        context,
        api_tokens.revoke_token,
        token_id,
        actor=caller.user_name,
        client_address=caller.address,
    )
    context.auth_changed()


# -- sessions ---------------------------------------------------------------------------
def _live_ids(context: WebContext) -> set[str] | None:
    return set(context.status().websocket_sessions)


async def list_sessions(
    context: WebContext, caller: Caller, *, user: str | None = None
) -> list[SessionOut]:
    def found(conn: sqlite3.Connection) -> list[Any] | None:
        user_id = None
        if user:
            record = users.get_user(conn, user)
            if record is None:
                return None
            user_id = record.id
        return sessions.list_sessions(
            conn,
            now=time.time(),
            idle_timeout=context.settings.auth.session_idle_timeout,
            user_id=user_id,
        )

    listed = await _run(context, found)
    if listed is None:
        raise _not_found(f"there is no user '{user}'")
    live = _live_ids(context)
    return [session_out(context, s, current=caller.session_id, live_ids=live) for s in listed]


async def revoke_session(context: WebContext, caller: Caller, session_id: str) -> SessionOut:
    """End one session; returns what it was."""
    idle = context.settings.auth.session_idle_timeout
    session = await _run(
        context, sessions.get_session, session_id, now=time.time(), idle_timeout=idle
    )
    if session is None:
        raise _not_found(f"there is no active session '{session_id}'")
    await _run(
        context,
        sessions.revoke_session,
        session_id,
        actor=caller.user_name,
        reason="revoked",
        client_address=caller.address,
    )
    context.session_ended(session_id)
    return session_out(context, session, current=caller.session_id)


# -- bans -------------------------------------------------------------------------------
async def list_bans(context: WebContext) -> list[BanOut]:
    return [ban_out(ban) for ban in await _run(context, bans.list_bans, now=time.time())]


async def lift_ban(context: WebContext, caller: Caller, ban_id: int) -> BanOut:
    active = {ban.id for ban in await _run(context, bans.list_bans, now=time.time())}
    if ban_id not in active:
        raise _not_found(f"there is no active ban {ban_id}; it may have ended already")
    lifted = await _run(
        context, bans.lift_ban, ban_id, actor=caller.user_name, client_address=caller.address
    )
    return ban_out(lifted)


# -- audit ------------------------------------------------------------------------------
#: What a time filter may look like: an ISO 8601 date or date-time, optionally with an
#: offset (``2026-01-31``, ``2026-01-31T08:00``, ``2026-01-31T08:00:00Z``).
MOMENT_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?$"
)


def parse_moment(text: str | None, label: str) -> dt.datetime | None:
    """A time filter as typed (see :data:`MOMENT_PATTERN`); without offset: local time."""
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(
            400, "invalid", f"'{text}' is not a date and time for '{label}'; e.g. 2026-01-31T08:00"
        ) from None


def timestamp(moment: dt.datetime | None) -> float | None:
    """A date-time from a form or query as a Unix time; a naive one is local time."""
    if moment is None:
        return None
    try:
        return (moment if moment.tzinfo else moment.astimezone()).timestamp()
    except (OverflowError, OSError, ValueError):
        raise ApiError(400, "invalid", f"{moment.isoformat()} is out of range") from None


@dataclass(frozen=True)
class AuditFilter:
    user: str | None = None
    event: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = 200


async def search_audit(context: WebContext, query: AuditFilter) -> tuple[list[AuditEntryOut], bool]:
    """Matching entries, newest first, and whether there are more than ``limit``."""
    found = await _run(
        context,
        audit.search,
        user=query.user or None,
        event=query.event or None,
        since=timestamp(query.since),
        until=timestamp(query.until),
        limit=query.limit + 1,
    )
    return [audit_out(entry) for entry in found[: query.limit]], len(found) > query.limit


async def audit_events(context: WebContext) -> list[str]:
    return await _run(context, audit.event_names)


# -- WireGuard peers --------------------------------------------------------------------
PEER_EXPIRY_CHOICES = ("never", "1d", "7d", "30d")
WIREGUARD_OFF = "WireGuard is off; set [wireguard] enabled = true and endpoint in the configuration"


def require_wireguard(manager: WireguardManager | None) -> WireguardManager:
    if manager is None:
        raise _not_found(WIREGUARD_OFF)
    return manager


def _peer_stats(manager: WireguardManager) -> dict[str, dict[str, Any]]:
    """What the interface knows per peer name (handshake, bytes); empty if it cannot tell."""
    try:
        found = manager.status().get("peers") or []
    except Exception:  # the dashboard rule: a missing part shows as "not known"
        return {}
    return {str(p["name"]): p for p in found if isinstance(p, dict) and p.get("name")}


def _existing(conn: sqlite3.Connection, name: str) -> peer_service.Peer:
    for peer in peer_service.list_peers(conn):
        if peer.name == name:
            return peer
    raise _not_found(f"there is no peer '{name}'")


def _config(conn: sqlite3.Connection, name: str, manager: WireguardManager) -> str:
    return peer_service.client_config(
        conn,
        name,
        settings=manager.settings,
        vault=manager.vault,
        server_public_key=manager.server_public_key,
    )


async def list_peers(manager: WireguardManager | None, context: WebContext) -> list[PeerOut]:
    wireguard = require_wireguard(manager)
    found = await _run(context, peer_service.list_peers)
    stats = _peer_stats(wireguard)
    now = time.time()
    return [peer_out(peer, stats.get(peer.name), now=now) for peer in found]


def _add_peer(
    conn: sqlite3.Connection,
    name: str,
    *,
    manager: WireguardManager,
    public_key: str | None,
    **kwargs: Any,
) -> tuple[peer_service.Peer, str | None]:
    for peer in peer_service.list_peers(conn):
        if peer.name == name:
            raise ApiError(409, "exists", f"there is already a peer '{name}'")
        if public_key is not None and peer.public_key == public_key.strip():
            raise ApiError(409, "exists", f"the peer '{peer.name}' has this public key already")
    added = peer_service.add_peer(
        conn,
        name,
        settings=manager.settings,
        vault=manager.vault,
        public_key=public_key,
        **kwargs,
    )
    return added, _config(conn, name, manager) if public_key is None else None


async def add_peer(
    manager: WireguardManager | None,
    context: WebContext,
    caller: Caller,
    *,
    name: str,
    user: str | None,
    public_key: str | None,
    trusted: bool,
    expires: str,
) -> PeerAdded:
    wireguard = require_wireguard(manager)
    if user and not await _run(context, users.get_user, user):
        raise _not_found(f"there is no user '{user}'")
    peer, config = await _run(
        context,
        _add_peer,
        name,
        manager=wireguard,
        public_key=public_key or None,
        actor=caller.user_name,
        user_name=user or None,
        trusted=trusted,
        expires_in=_expiry(expires),
    )
    wireguard.changed()
    return PeerAdded(peer=peer_out(peer), config=config)


def _change_peer(
    conn: sqlite3.Connection, name: str, *, enabled: bool | None, trusted: bool | None, actor: str
) -> peer_service.Peer:
    peer = _existing(conn, name)
    if enabled is not None and enabled != peer.enabled:
        peer = peer_service.set_enabled(conn, name, enabled, actor=actor)
    if trusted is not None and trusted != peer.trusted:
        peer = peer_service.set_trusted(conn, name, trusted, actor=actor)
    return peer


async def change_peer(
    manager: WireguardManager | None,
    context: WebContext,
    caller: Caller,
    name: str,
    *,
    enabled: bool | None = None,
    trusted: bool | None = None,
) -> PeerOut:
    wireguard = require_wireguard(manager)
    peer = await _run(
        context, _change_peer, name, enabled=enabled, trusted=trusted, actor=caller.user_name
    )
    wireguard.changed()
    return peer_out(peer, _peer_stats(wireguard).get(name))


def _rotate_peer(
    conn: sqlite3.Connection, name: str, *, manager: WireguardManager, actor: str
) -> tuple[peer_service.Peer, str]:
    _existing(conn, name)
    peer = peer_service.rotate(conn, name, vault=manager.vault, actor=actor)
    return peer, _config(conn, name, manager)


async def rotate_peer(
    manager: WireguardManager | None, context: WebContext, caller: Caller, name: str
) -> PeerConfigOut:
    wireguard = require_wireguard(manager)
    peer, config = await _run(
        context, _rotate_peer, name, manager=wireguard, actor=caller.user_name
    )
    wireguard.changed()
    return PeerConfigOut(peer=peer_out(peer), config=config)


def _remove_peer(conn: sqlite3.Connection, name: str, *, actor: str) -> None:
    _existing(conn, name)
    peer_service.remove_peer(conn, name, actor=actor)


async def remove_peer(
    manager: WireguardManager | None, context: WebContext, caller: Caller, name: str
) -> None:
    wireguard = require_wireguard(manager)
    await _run(context, _remove_peer, name, actor=caller.user_name)
    wireguard.changed()


def _peer_config(conn: sqlite3.Connection, name: str, manager: WireguardManager) -> str:
    _existing(conn, name)
    return _config(conn, name, manager)


async def peer_config(manager: WireguardManager | None, context: WebContext, name: str) -> str:
    """The configuration while the gateway still holds the generated key (else 409)."""
    wireguard = require_wireguard(manager)
    try:
        return await context.db.run(_peer_config, name, wireguard)
    except PeerError as error:
        raise ApiError(409, "config_unavailable", str(error)) from None


def web_url(context: WebContext, host: str | None, path: str) -> str:
    """``path`` as a whole link on the gateway's web port (gateway/policy/names.py)."""
    settings = context.settings
    return names.web_url(
        path,
        public_url=settings.listen.public_url,
        names=context.state.access.names,
        host=host,
        addresses=machine_names(settings.listen.host),
        tls=settings.tls.enabled,
        web_port=settings.listen.http_port,
    )


def _create_link(conn: sqlite3.Connection, name: str, *, actor: str) -> str:
    _existing(conn, name)
    return peer_service.create_link(conn, name, actor=actor)


async def create_peer_link(
    manager: WireguardManager | None,
    context: WebContext,
    caller: Caller,
    name: str,
    *,
    host: str | None,
) -> PeerLinkOut:
    require_wireguard(manager)
    try:
        token = await context.db.run(_create_link, name, actor=caller.user_name)
    except PeerError as error:
        raise ApiError(409, "config_unavailable", str(error)) from None
    path = f"/.gateway/peer/{token}"
    return PeerLinkOut(
        path=path,
        url=web_url(context, host, path),
        expires_at=time.time() + peer_service.LINK_TTL,
    )
