"""``cemm-gateway allow``: the IP allowlist's added entries (add, remove, list)."""

from __future__ import annotations

import argparse
import json

from gateway import durations
from gateway.cli import common
from gateway.cli.common import EXIT_OK, CommandError, actor, open_db, when
from gateway.services import allowlist as allowlist_service


def cmd_add(args: argparse.Namespace) -> int:
    expires_in = durations.parse_duration(args.expires) if args.expires else None
    network = allowlist_service.normalise(args.network)
    with open_db(common.settings(args)) as conn:
        try:
            saved = allowlist_service.save_entry(
                conn,
                network,
                actor=actor(),
                label=args.label or "",
                expires_in=expires_in,
                confirm_wide=args.yes,
            )
        except allowlist_service.WideNetworkError as error:
            raise CommandError(f"{error.warning} Add --yes to allow it anyway.") from None
    entry, previous = saved.entry, saved.previous
    if previous is None:
        expiry = f", expires {when(entry.expires_at)}" if entry.expires_at else ""
        print(f"allowed {entry.network}{expiry}")
        return EXIT_OK
    # The network was listed already: its label and expiry are replaced, and that is said.
    now, was = _entry_terms(entry), _entry_terms(previous)
    change = f"; was {was}" if was != now else "; unchanged"
    print(f"updated {entry.network} ({now}{change})")
    return EXIT_OK


def _entry_terms(entry: allowlist_service.Entry) -> str:
    label = f"label {entry.label!r}" if entry.label else "no label"
    expiry = f"expires {when(entry.expires_at)}" if entry.expires_at else "no expiry"
    return f"{label}, {expiry}"


def cmd_remove(args: argparse.Namespace) -> int:
    network = allowlist_service.normalise(args.network)
    with open_db(common.settings(args)) as conn:
        allowlist_service.remove_entry(conn, network, actor=actor())
    print(f"removed {network}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    settings = common.settings(args)
    with open_db(settings) as conn:
        entries = allowlist_service.list_entries(conn)
    now = common.now()
    if args.json:
        listing = {
            "default_networks": settings.allowlist.default_networks,
            "entries": [{**entry.__dict__, "active": entry.active_at(now)} for entry in entries],
        }
        print(json.dumps(listing, indent=2))
        return EXIT_OK
    print("Always allowed ([allowlist] default_networks in the configuration):")
    for network in settings.allowlist.default_networks:
        print(f"  {network}")
    if not entries:
        print("No added entries. Add one with: cemm-gateway allow add 203.0.113.7 --label office")
        return EXIT_OK
    rows = [
        (
            entry.network,
            entry.label or "-",
            when(entry.expires_at) + ("" if entry.active_at(now) else " (expired)"),
            str(entry.hits),
            when(entry.last_hit_at),
            entry.created_by,
        )
        for entry in entries
    ]
    print("Added entries:")
    header = ("NETWORK", "LABEL", "EXPIRES", "HITS", "LAST HIT", "ADDED BY")
    common.table(header, rows, indent="  ")
    return EXIT_OK


def register(commands: common.Commands) -> None:
    group = common.resource(commands, "allow", "manage the IP allowlist")
    common.action(
        group,
        "add",
        cmd_add,
        "allow a network or address",
        (("network",), {"help": "IPv4/IPv6 network or address, e.g. 203.0.113.0/24"}),
        (("--label",), {"help": "what this entry is for, e.g. 'office'"}),
        (("--expires",), {"metavar": "DURATION", "help": "e.g. 12h, 7d, 2w (default: never)"}),
        (
            ("--yes",),
            {
                "action": "store_true",
                "help": "allow 0.0.0.0/0, ::/0 or a public network wider than /16 (refused "
                "without it: anyone in it could connect and try to log in)",
            },
        ),
    )
    common.action(group, "remove", cmd_remove, "remove an entry", (("network",), {}))
    common.action(group, "list", cmd_list, "show the entries", common.JSON)
