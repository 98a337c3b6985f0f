"""Service-layer records as the admin app shows them (API models; the pages render the
same models), so the API and the pages can never disagree about a field.

Each function here works out what only the admin app knows of a record (whether a token
works now, a ban's kind, a peer's state and what the interface knows of it...) and hands
it with the record to the one converter, :func:`gateway.admin.answers.shown`."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any, Literal

from gateway.admin.answers import shown
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
    return shown(
        SessionOut,
        session,
        last_seen_at=seen,
        current=session.id == current,
        live_websocket=None if live_ids is None else session.id in live_ids,
    )


def ban_out(ban: Ban) -> BanOut:
    prefix, _, target = ban.subject.partition(":")
    kind: Literal["user", "address", "other"] = (
        "user" if prefix == "user" else "address" if prefix == "address" else "other"
    )
    return shown(BanOut, ban, kind=kind, target=target or ban.subject)


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

    return shown(
        PeerOut,
        peer,
        state=state,
        latest_handshake=number("latest_handshake"),
        handshake_age=number("handshake_age"),
        rx_bytes=count("rx_bytes"),
        tx_bytes=count("tx_bytes"),
    )
