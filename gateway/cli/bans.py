"""``cemm-gateway bans``: bans after failed logins (list, lift)."""

from __future__ import annotations

import argparse

from gateway.cli import common
from gateway.cli.common import EXIT_OK, actor, open_db, when
from gateway.services import bans


def cmd_list(args: argparse.Namespace) -> int:
    with open_db(common.settings(args)) as conn:
        found = bans.list_bans(conn, now=common.now())
    return common.print_list(
        ("ID", "SUBJECT", "SINCE", "UNTIL", "REASON"),
        [
            (str(ban.id), ban.subject, when(ban.created_at), when(ban.until), ban.reason)
            for ban in found
        ],
        [ban.__dict__ for ban in found],
        as_json=args.json,
        empty="No active bans.",
    )


def cmd_lift(args: argparse.Namespace) -> int:
    with open_db(common.settings(args)) as conn:
        lifted = bans.lift(conn, args.which, actor=actor())
    for ban in lifted:
        print(f"lifted the ban on {ban.subject}")
    return EXIT_OK


def register(commands: common.Commands) -> None:
    group = common.resource(commands, "bans", "bans after failed logins")
    common.action(group, "list", cmd_list, "list active bans", common.JSON)
    common.action(
        group,
        "lift",
        cmd_lift,
        "lift a ban",
        (("which",), {"help": "ban ID, address or user name"}),
    )
