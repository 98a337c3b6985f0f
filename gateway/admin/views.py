"""Service-layer records as the admin app shows them (API models; the pages render the
same models), so the API and the pages can never disagree about a field.

:func:`shown` makes a record's ``*Out`` model (which extends the record's dataclass, see
:mod:`gateway.admin.models`) from the record and what only the admin app knows. Sessions,
bans, peers (and guest links, ``api/guests.py``) keep a model and a converter of their
own: their answers place computed values between the record's fields (a ban's ``kind``
and ``target`` after ``subject``, a peer's ``state`` after ``enabled``) or list them in
another order than the record (a session, whose record also holds the CSRF token; a guest
link, whose record order the CLI's JSON shows), and neither answer may change."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, Literal

from gateway.admin.models import (
    AllowlistEntryOut,
    BanOut,
    PeerOut,
    SessionOut,
    TokenOut,
    UserOut,
)
from gateway.policy.allowlist import AddressError, parse_address, parse_network
from gateway.policy.credentials import SessionInfo
from gateway.services.allowlist import Entry
from gateway.services.api_tokens import ApiToken
from gateway.services.bans import Ban
from gateway.services.peers import Peer
from gateway.services.users import User
from gateway.web.context import WebContext

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def shown[Out](out: Callable[..., Out], record: DataclassInstance, **added: object) -> Out:
    """``record`` as its ``*Out`` model (which extends the record's dataclass), with the
    values only the admin app knows (``added``)."""
    fields = {field.name: getattr(record, field.name) for field in dataclasses.fields(record)}
    return out(**fields, **added)


def user_out(user: User) -> UserOut:
    return shown(UserOut, user)


def entry_admits(entry: Entry, address: str) -> bool:
    try:
        version, value = parse_address(address)
    except AddressError:
        return False
    return parse_network(entry.network).holds(version, value)


def entry_out(entry: Entry, *, address: str, now: float | None = None) -> AllowlistEntryOut:
    active = entry.active_at(time.time() if now is None else now)
    return shown(
        AllowlistEntryOut, entry, active=active, admits_you=active and entry_admits(entry, address)
    )


def token_out(token: ApiToken, *, now: float | None = None) -> TokenOut:
    return shown(TokenOut, token, active=token.active_at(time.time() if now is None else now))


def session_out(
    context: WebContext,
    session: SessionInfo,
    *,
    current: str | None,
    live_ids: Collection[str] | None = None,
) -> SessionOut:
    # The proxy keeps recent use in memory and writes it in batches: show the later one.
    seen = max(session.last_seen_at, context.state.session_activity.get(session.id, 0.0))
    return SessionOut(
        id=session.id,
        user=session.user_name,
        role=session.role,
        client_address=session.client_address,
        user_agent=session.user_agent,
        created_at=session.created_at,
        last_seen_at=seen,
        expires_at=session.expires_at,
        current=session.id == current,
        live_websocket=None if live_ids is None else session.id in live_ids,
    )


def ban_out(ban: Ban) -> BanOut:
    prefix, _, target = ban.subject.partition(":")
    kind: Literal["user", "address", "other"] = (
        "user" if prefix == "user" else "address" if prefix == "address" else "other"
    )
    return BanOut(
        id=ban.id,
        subject=ban.subject,
        kind=kind,
        target=target or ban.subject,
        reason=ban.reason,
        created_at=ban.created_at,
        until=ban.until,
    )


def peer_out(
    peer: Peer, stats: Mapping[str, Any] | None = None, *, now: float | None = None
) -> PeerOut:
    """A peer, with what the interface knows of it (``WireguardManager.status()["peers"]``)."""
    moment = time.time() if now is None else now
    state: Literal["enabled", "disabled", "expired"] = (
        "disabled" if not peer.enabled else "enabled" if peer.active(moment) else "expired"
    )
    stats = stats or {}

    def number(key: str) -> float | None:
        value = stats.get(key)
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )

    def count(key: str) -> int | None:
        value = stats.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return PeerOut(
        name=peer.name,
        user=peer.user_name,
        public_key=peer.public_key,
        address_v4=peer.address_v4,
        address_v6=peer.address_v6,
        enabled=peer.enabled,
        state=state,
        trusted=peer.trusted,
        expires_at=peer.expires_at,
        created_at=peer.created_at,
        first_handshake_at=peer.first_handshake_at,
        config_available=peer.config_available,
        latest_handshake=number("latest_handshake"),
        handshake_age=number("handshake_age"),
        rx_bytes=count("rx_bytes"),
        tx_bytes=count("tx_bytes"),
    )
