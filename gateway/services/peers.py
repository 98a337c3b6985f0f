"""WireGuard peers: the one place that adds, changes and removes them, and hands out their
configuration.

Rules that live here (CLI and admin app alike):
- a peer gets the lowest free tunnel address, a preshared key, and either a key pair the
  gateway generates or the public key its owner brings;
- a generated private key is kept sealed only until the peer's first handshake or 24 hours,
  whichever comes first; until then the configuration can be shown (QR code, download,
  one-time link); afterwards only :func:`rotate` makes a new one;
- one-time links carry a 256-bit random token (only its hash is stored), work once and
  expire after 15 minutes;
- disabled, expired and removed peers are not in the interface's desired state.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Protocol

from gateway.auth import tokens
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.i18n import N_
from gateway.services import audit, users
from gateway.services.errors import Conflict, Invalid, NotFound, ServiceError
from gateway.settings import WireguardSettings
from gateway.store.db import transaction
from gateway.wireguard import config as wgconfig
from gateway.wireguard import keys

PRIVATE_KEY_TTL = 24 * 3600.0
LINK_TTL = 15 * 60.0
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._- ")


class PeerError(ServiceError):
    """A change to a peer that cannot be made; the message says why."""


class PeerInvalid(PeerError, Invalid):
    """A name or key that is not acceptable, or no free tunnel address."""


class PeerNotFound(PeerError, NotFound):
    """No peer with that name."""


class PeerExists(PeerError, Conflict):
    """The name or the public key is taken by another peer."""

    code = "exists"


class ConfigUnavailable(PeerError, Conflict):
    """The generated private key is gone (handed over, or older than a day)."""

    code = "config_unavailable"


class ServerSide(Protocol):
    """What a client configuration needs of the gateway's side (the WireGuard manager)."""

    settings: WireguardSettings
    vault: keys.KeyVault
    server_public_key: str


@dataclass(frozen=True)
class Peer:
    id: int
    name: str
    user_name: str | None
    public_key: str
    address_v4: str
    address_v6: str | None
    enabled: bool
    trusted: bool
    expires_at: float | None
    created_at: float
    first_handshake_at: float | None
    config_available: bool

    def active(self, now: float) -> bool:
        return self.enabled and (self.expires_at is None or self.expires_at > now)


_SELECT = (
    "SELECT wireguard_peer.*, user.name AS user_name FROM wireguard_peer"
    " LEFT JOIN user ON user.id = wireguard_peer.user_id"
)


def _peer(row: sqlite3.Row, now: float) -> Peer:
    return Peer(
        id=row["id"],
        name=row["name"],
        user_name=row["user_name"],
        public_key=row["public_key"],
        address_v4=row["address_v4"],
        address_v6=row["address_v6"],
        enabled=bool(row["enabled"]),
        trusted=bool(row["trusted"]),
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        first_handshake_at=row["first_handshake_at"],
        config_available=row["private_key_sealed"] is not None
        and (row["private_key_until"] or 0) > now,
    )


def list_peers(conn: sqlite3.Connection, *, clock: Clock = SYSTEM_CLOCK) -> list[Peer]:
    now = clock.now()
    return [_peer(row, now) for row in conn.execute(_SELECT + " ORDER BY wireguard_peer.name")]


def get_peer(conn: sqlite3.Connection, name: str, *, clock: Clock = SYSTEM_CLOCK) -> Peer:
    row = conn.execute(_SELECT + " WHERE wireguard_peer.name = ?", (name,)).fetchone()
    if row is None:
        raise PeerNotFound(
            N_("there is no peer '{name}'; 'cemm-gateway peer list' shows them"), name=name
        )
    return _peer(row, clock.now())


def check_name(name: str) -> str:
    if not name or len(name) > 64 or not set(name) <= _NAME_CHARS or name.strip() != name:
        raise PeerInvalid(
            N_(
                "peer name '{name}' is not allowed; use 1-64 letters, digits, spaces, '.', '_' "
                "or '-', for example 'anna phone'"
            ),
            field="name",
            name=name,
        )
    return name


def add_peer(
    conn: sqlite3.Connection,
    name: str,
    *,
    settings: WireguardSettings,
    vault: keys.KeyVault,
    actor: str,
    user_name: str | None = None,
    public_key: str | None = None,
    trusted: bool = False,
    expires_in: float | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Peer:
    check_name(name)
    private_key = None
    if public_key is None:
        private_key = keys.generate_private_key()
        public_key = keys.public_key(private_key)
    else:
        try:
            public_key = keys.check_key(public_key)
        except keys.WireguardKeyError as error:
            raise PeerInvalid(error.text, field="public_key") from None
    now = clock.now()
    with transaction(conn):
        if conn.execute("SELECT 1 FROM wireguard_peer WHERE name = ?", (name,)).fetchone():
            raise PeerExists(N_("there is already a peer '{name}'"), field="name", name=name)
        if conn.execute(
            "SELECT 1 FROM wireguard_peer WHERE public_key = ?", (public_key,)
        ).fetchone():
            raise PeerExists(N_("another peer has this public key"), field="public_key")
        user_id = users.require_user(conn, user_name).id if user_name else None
        used4 = [r[0] for r in conn.execute("SELECT address_v4 FROM wireguard_peer")]
        used6 = [r[0] for r in conn.execute("SELECT address_v6 FROM wireguard_peer") if r[0]]
        try:
            address_v4 = wgconfig.next_free_address(settings.subnet, used4)
            address_v6 = (
                wgconfig.next_free_address(settings.subnet6, used6) if settings.subnet6 else None
            )
        except ValueError as error:
            raise PeerInvalid(str(error)) from None
        conn.execute(
            "INSERT INTO wireguard_peer (name, user_id, public_key, private_key_sealed,"
            " private_key_until, preshared_key, address_v4, address_v6, trusted, expires_at,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                user_id,
                public_key,
                vault.seal(private_key) if private_key else None,
                now + PRIVATE_KEY_TTL if private_key else None,
                vault.seal(keys.generate_preshared_key()),
                address_v4,
                address_v6,
                int(trusted),
                now + expires_in if expires_in else None,
                now,
                now,
            ),
        )
        audit.record(
            conn,
            actor,
            "peer.add",
            clock=clock,
            peer=name,
            address=address_v4,
            generated_key=private_key is not None,
            trusted=trusted,
        )
    return get_peer(conn, name, clock=clock)


def _update(
    conn: sqlite3.Connection,
    name: str,
    event: str,
    actor: str,
    clock: Clock,
    sql: str,
    args: tuple[object, ...],
) -> Peer:
    peer = get_peer(conn, name, clock=clock)
    with transaction(conn):
        conn.execute(sql, (*args, clock.now(), peer.id))
        audit.record(conn, actor, event, clock=clock, peer=name)
    return get_peer(conn, name, clock=clock)


def set_enabled(
    conn: sqlite3.Connection, name: str, enabled: bool, *, actor: str, clock: Clock = SYSTEM_CLOCK
) -> Peer:
    return _update(
        conn,
        name,
        "peer.enable" if enabled else "peer.disable",
        actor,
        clock,
        "UPDATE wireguard_peer SET enabled = ?, updated_at = ? WHERE id = ?",
        (int(enabled),),
    )


def set_trusted(
    conn: sqlite3.Connection, name: str, trusted: bool, *, actor: str, clock: Clock = SYSTEM_CLOCK
) -> Peer:
    return _update(
        conn,
        name,
        "peer.trusted" if trusted else "peer.untrusted",
        actor,
        clock,
        "UPDATE wireguard_peer SET trusted = ?, updated_at = ? WHERE id = ?",
        (int(trusted),),
    )


def rotate(
    conn: sqlite3.Connection,
    name: str,
    *,
    vault: keys.KeyVault,
    actor: str,
    clock: Clock = SYSTEM_CLOCK,
) -> Peer:
    """New key pair and preshared key: the old configuration stops working."""
    private_key = keys.generate_private_key()
    now = clock.now()
    return _update(
        conn,
        name,
        "peer.rotate",
        actor,
        clock,
        "UPDATE wireguard_peer SET public_key = ?, private_key_sealed = ?, private_key_until = ?,"
        " preshared_key = ?, first_handshake_at = NULL, updated_at = ? WHERE id = ?",
        (
            keys.public_key(private_key),
            vault.seal(private_key),
            now + PRIVATE_KEY_TTL,
            vault.seal(keys.generate_preshared_key()),
        ),
    )


def remove_peer(
    conn: sqlite3.Connection, name: str, *, actor: str, clock: Clock = SYSTEM_CLOCK
) -> None:
    peer = get_peer(conn, name, clock=clock)
    with transaction(conn):
        conn.execute("DELETE FROM wireguard_peer WHERE id = ?", (peer.id,))
        audit.record(conn, actor, "peer.remove", clock=clock, peer=name)


def client_config(
    conn: sqlite3.Connection,
    name: str,
    *,
    settings: WireguardSettings,
    vault: keys.KeyVault,
    server_public_key: str,
    clock: Clock = SYSTEM_CLOCK,
) -> str:
    """The phone's .conf, while the gateway still holds the generated private key."""
    row = conn.execute("SELECT * FROM wireguard_peer WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise PeerNotFound(N_("there is no peer '{name}'"), name=name)
    private_key = (
        vault.open(row["private_key_sealed"])
        if row["private_key_sealed"] and (row["private_key_until"] or 0) > clock.now()
        else None
    )
    if private_key is None:
        raise ConfigUnavailable(
            N_(
                "the configuration of '{name}' is no longer available (its key was handed "
                "over or is older than a day); 'cemm-gateway peer rotate {name}' makes a new one"
            ),
            name=name,
        )
    gateway_v6 = wgconfig.gateway_address(settings.subnet6) if settings.subnet6 else None
    return wgconfig.client_config(
        private_key=private_key,
        address_v4=row["address_v4"],
        address_v6=row["address_v6"],
        server_public_key=server_public_key,
        preshared_key=vault.open(row["preshared_key"]) if row["preshared_key"] else None,
        endpoint=settings.endpoint,
        gateway_v4=wgconfig.gateway_address(settings.subnet),
        gateway_v6=gateway_v6,
        keepalive=settings.keepalive,
    )


def config_of(
    conn: sqlite3.Connection, name: str, server: ServerSide, *, clock: Clock = SYSTEM_CLOCK
) -> str:
    """The peer's configuration while the gateway holds its key (:func:`client_config`)."""
    return client_config(
        conn,
        name,
        settings=server.settings,
        vault=server.vault,
        server_public_key=server.server_public_key,
        clock=clock,
    )


def add_with_config(
    conn: sqlite3.Connection,
    name: str,
    server: ServerSide,
    *,
    actor: str,
    user_name: str | None = None,
    public_key: str | None = None,
    trusted: bool = False,
    expires_in: float | None = None,
) -> tuple[Peer, str | None]:
    """Add a peer (:func:`add_peer`); with a generated key pair, also its configuration."""
    peer = add_peer(
        conn,
        name,
        settings=server.settings,
        vault=server.vault,
        actor=actor,
        user_name=user_name,
        public_key=public_key,
        trusted=trusted,
        expires_in=expires_in,
    )
    return peer, config_of(conn, name, server) if public_key is None else None


def rotate_with_config(
    conn: sqlite3.Connection, name: str, server: ServerSide, *, actor: str
) -> tuple[Peer, str]:
    """New keys (:func:`rotate`) and the new configuration."""
    peer = rotate(conn, name, vault=server.vault, actor=actor)
    return peer, config_of(conn, name, server)


def change(
    conn: sqlite3.Connection,
    name: str,
    *,
    enabled: bool | None = None,
    trusted: bool | None = None,
    actor: str,
) -> Peer:
    """Enable/disable and trust/untrust in one go; a setting already in place is left as is."""
    peer = get_peer(conn, name)
    if enabled is not None and enabled != peer.enabled:
        peer = set_enabled(conn, name, enabled, actor=actor)
    if trusted is not None and trusted != peer.trusted:
        peer = set_trusted(conn, name, trusted, actor=actor)
    return peer


def desired_peers(
    conn: sqlite3.Connection, *, vault: keys.KeyVault, clock: Clock = SYSTEM_CLOCK
) -> list[wgconfig.PeerState]:
    now = clock.now()
    rows = conn.execute(
        "SELECT * FROM wireguard_peer WHERE enabled = 1 AND (expires_at IS NULL OR expires_at > ?)"
        " ORDER BY id",
        (now,),
    ).fetchall()
    return [
        wgconfig.PeerState(
            public_key=row["public_key"],
            preshared_key=vault.open(row["preshared_key"]) if row["preshared_key"] else None,
            addresses=tuple(a for a in (row["address_v4"], row["address_v6"]) if a),
        )
        for row in rows
    ]


def trusted_addresses(conn: sqlite3.Connection, *, clock: Clock = SYSTEM_CLOCK) -> list[str]:
    """Tunnel addresses of enabled peers marked as trusted devices (no login needed)."""
    now = clock.now()
    rows = conn.execute(
        "SELECT address_v4, address_v6 FROM wireguard_peer WHERE trusted = 1 AND enabled = 1"
        " AND (expires_at IS NULL OR expires_at > ?)",
        (now,),
    ).fetchall()
    return [address for row in rows for address in row if address]


def next_expiry(conn: sqlite3.Connection, *, clock: Clock = SYSTEM_CLOCK) -> float | None:
    row = conn.execute(
        "SELECT min(expires_at) FROM wireguard_peer WHERE enabled = 1 AND expires_at > ?",
        (clock.now(),),
    ).fetchone()
    return row[0]


def keys_awaiting_handshake(conn: sqlite3.Connection) -> bool:
    """Whether a generated private key is kept until its peer's first handshake."""
    row = conn.execute(
        "SELECT 1 FROM wireguard_peer WHERE private_key_sealed IS NOT NULL LIMIT 1"
    ).fetchone()
    return row is not None


def record_handshakes(conn: sqlite3.Connection, handshakes: dict[str, float]) -> list[str]:
    """Mark first handshakes; the generated private key is deleted at that moment."""
    done = []
    with transaction(conn):
        for public_key, when in handshakes.items():
            updated = conn.execute(
                "UPDATE wireguard_peer SET first_handshake_at = ?, private_key_sealed = NULL,"
                " private_key_until = NULL WHERE public_key = ? AND first_handshake_at IS NULL",
                (when, public_key),
            ).rowcount
            if updated:
                done.append(public_key)
    return done


def purge_expired_keys(conn: sqlite3.Connection, *, clock: Clock = SYSTEM_CLOCK) -> list[str]:
    """Delete the generated private keys kept longer than :data:`PRIVATE_KEY_TTL` (their
    peers never made a handshake); the names of those peers."""
    rows = conn.execute(
        "UPDATE wireguard_peer SET private_key_sealed = NULL, private_key_until = NULL"
        " WHERE private_key_until IS NOT NULL AND private_key_until <= ? RETURNING name",
        (clock.now(),),
    ).fetchall()
    return sorted(row[0] for row in rows)


def create_link(
    conn: sqlite3.Connection, name: str, *, actor: str, clock: Clock = SYSTEM_CLOCK
) -> str:
    """A one-time link token for the peer's configuration (shown once)."""
    peer = get_peer(conn, name, clock=clock)
    if not peer.config_available:
        raise ConfigUnavailable(
            N_("the configuration of '{name}' is no longer available; rotate the keys"),
            name=name,
        )
    token = tokens.new_session_token()
    now = clock.now()
    with transaction(conn):
        conn.execute(
            "INSERT INTO peer_link (token_hash, peer_id, created_at, expires_at)"
            " VALUES (?, ?, ?, ?)",
            (tokens.token_hash(token), peer.id, now, now + LINK_TTL),
        )
        audit.record(conn, actor, "peer.link", clock=clock, peer=name)
    return token


def consume_link(
    conn: sqlite3.Connection, token: str, *, clock: Clock = SYSTEM_CLOCK
) -> str | None:
    """The peer name for a valid, unused link; the link is spent. None otherwise."""
    now = clock.now()
    with transaction(conn):
        row = conn.execute(
            "SELECT peer_link.token_hash, wireguard_peer.name FROM peer_link"
            " JOIN wireguard_peer ON wireguard_peer.id = peer_link.peer_id"
            " WHERE peer_link.token_hash = ? AND peer_link.used_at IS NULL"
            " AND peer_link.expires_at > ?",
            (tokens.token_hash(token), now),
        ).fetchone()
        if row is None:
            return None
        conn.execute("UPDATE peer_link SET used_at = ? WHERE token_hash = ?", (now, row[0]))
        audit.record(conn, "one-time link", "peer.link_used", clock=clock, peer=row[1])
    return str(row[1])
