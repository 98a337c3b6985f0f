"""``cemm-gateway peer``: WireGuard peers, phones mostly (add, list, enable, disable, rotate,
remove, link).

A peer's configuration holds its private key: it goes to standard output once (``add``,
``rotate``), with an optional QR code on standard error, or behind a one-time link
(``link``). Everything here works on the database and the key files alone; the running
gateway brings its interface in line within seconds.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys

from gateway import durations
from gateway.cli import common
from gateway.cli.common import EXIT_OK, CommandError, actor, open_db, when
from gateway.netutil import machine_names
from gateway.policy import names
from gateway.services import peers, runtime_settings
from gateway.settings import Settings
from gateway.wireguard import keys as wg_keys
from gateway.wireguard.keys import KeyVault

_QR: common.Argument = (("--qr",), {"action": "store_true", "help": "also print a QR code"})
_PEER_NAME: common.Argument = (("name",), {"help": "peer name, e.g. 'anna phone'"})


def _in_force(args: argparse.Namespace) -> Settings:
    """The settings with what the admin app changed at run time (WireGuard on, endpoint)."""
    settings = common.settings(args)
    with open_db(settings) as conn:
        return runtime_settings.in_force(conn, settings)


def _wireguard(settings: Settings) -> tuple[KeyVault, str]:
    from gateway.wireguard.manager import key_directory

    if not settings.wireguard.enabled:
        raise CommandError(
            'WireGuard is off; set [wireguard] enabled = true and endpoint = "host:port" first'
        )
    directory = key_directory(settings.data_dir)
    return KeyVault(directory), wg_keys.public_key(wg_keys.server_private_key(directory))


def _print_config(settings: Settings, conn: sqlite3.Connection, name: str, *, qr: bool) -> None:
    vault, server_key = _wireguard(settings)
    text = peers.client_config(
        conn, name, settings=settings.wireguard, vault=vault, server_public_key=server_key
    )
    print(text, end="")
    if qr:
        from gateway.qr import qr_text

        print(qr_text(text), file=sys.stderr)
    print(
        f"# The configuration of '{name}' (shown once; keep it secret). Import it in the "
        "WireGuard app, or scan the QR code with --qr.",
        file=sys.stderr,
    )


def cmd_add(args: argparse.Namespace) -> int:
    settings = _in_force(args)
    vault, _ = _wireguard(settings)
    expires_in = durations.parse_duration(args.expires) if args.expires else None
    with open_db(settings) as conn:
        peer = peers.add_peer(
            conn,
            args.name,
            settings=settings.wireguard,
            vault=vault,
            actor=actor(),
            user_name=args.user,
            public_key=args.public_key,
            trusted=args.trusted,
            expires_in=expires_in,
        )
        if args.public_key:
            print(f"added peer {peer.name} at {peer.address_v4} with its own key")
            return EXIT_OK
        _print_config(settings, conn, peer.name, qr=args.qr)
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    with open_db(common.settings(args)) as conn:
        found = peers.list_peers(conn)
    now = common.now()
    rows = [
        (
            peer.name,
            peer.address_v4,
            "enabled" if peer.active(now) else ("expired" if peer.enabled else "disabled"),
            "yes" if peer.trusted else "no",
            when(peer.first_handshake_at),
            when(peer.expires_at),
            peer.user_name or "-",
        )
        for peer in found
    ]
    return common.print_list(
        ("NAME", "ADDRESS", "STATE", "TRUSTED", "FIRST HANDSHAKE", "EXPIRES", "USER"),
        rows,
        [{**peer.__dict__, "active": peer.active(now)} for peer in found],
        as_json=args.json,
        empty="No peers. Add a phone with: cemm-gateway peer add 'anna phone' --qr",
    )


def cmd_enable(args: argparse.Namespace) -> int:
    with open_db(common.settings(args)) as conn:
        peers.set_enabled(conn, args.name, True, actor=actor())
    print(f"enabled {args.name}")
    return EXIT_OK


def cmd_disable(args: argparse.Namespace) -> int:
    with open_db(common.settings(args)) as conn:
        peers.set_enabled(conn, args.name, False, actor=actor())
    print(f"disabled {args.name}; its tunnel stops within seconds")
    return EXIT_OK


def cmd_rotate(args: argparse.Namespace) -> int:
    settings = _in_force(args)
    vault, _ = _wireguard(settings)
    with open_db(settings) as conn:
        peers.rotate(conn, args.name, vault=vault, actor=actor())
        _print_config(settings, conn, args.name, qr=args.qr)
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    with open_db(common.settings(args)) as conn:
        peers.remove_peer(conn, args.name, actor=actor())
    print(f"removed {args.name}")
    return EXIT_OK


def cmd_link(args: argparse.Namespace) -> int:
    settings = _in_force(args)
    with open_db(settings) as conn:
        token = peers.create_link(conn, args.name, actor=actor())
    listen = settings.listen
    addresses = machine_names(listen.host)
    print(
        names.web_url(
            f"/.gateway/peer/{token}",
            public_url=listen.public_url,
            names=names.own_names(public_url=listen.public_url, addresses=addresses),
            host=None,
            addresses=addresses,
            tls=settings.tls.enabled,
            web_port=listen.http_port,
        )
    )
    print(
        "# Open this link from the phone within 15 minutes; it works once. "
        "Set [listen] public_url if the phone knows the gateway by another address.",
        file=sys.stderr,
    )
    return EXIT_OK


def register(commands: common.Commands) -> None:
    group = common.resource(commands, "peer", "WireGuard peers (phones)")
    common.action(
        group,
        "add",
        cmd_add,
        "add a peer and print its configuration once",
        _PEER_NAME,
        _QR,
        (("--user",), {"help": "the user it belongs to"}),
        (("--public-key",), {"help": "the peer's own public key (no private key is made)"}),
        (
            ("--trusted",),
            {"action": "store_true", "help": "a trusted device: its tunnel address needs no login"},
        ),
        (("--expires",), {"metavar": "DURATION", "help": "e.g. 30d (default: never)"}),
    )
    common.action(group, "list", cmd_list, "list peers", common.JSON)
    common.action(group, "enable", cmd_enable, "enable a peer", _PEER_NAME)
    common.action(group, "disable", cmd_disable, "disable a peer", _PEER_NAME)
    common.action(
        group, "rotate", cmd_rotate, "new keys; prints the new configuration", _PEER_NAME, _QR
    )
    common.action(group, "remove", cmd_remove, "remove a peer", _PEER_NAME)
    common.action(
        group,
        "link",
        cmd_link,
        "a one-time link to the configuration (15 minutes)",
        _PEER_NAME,
    )
