"""``cemm-gateway passkey``: the passkeys people made on their account page (list,
remove). Making one needs the person's browser and authenticator, so it is not here."""

from __future__ import annotations

import argparse

from gateway.cli import common
from gateway.cli.common import EXIT_OK, actor, open_db, when
from gateway.services import passkeys


def cmd_list(args: argparse.Namespace) -> int:
    with open_db(common.settings(args)) as conn:
        found = passkeys.list_passkeys(conn, user_name=args.user)
    rows = [
        (
            str(p.id),
            p.user_name,
            p.name,
            p.rp_id,
            when(p.created_at),
            when(p.last_used_at),
        )
        for p in found
    ]
    records = [
        {
            "id": p.id,
            "user": p.user_name,
            "name": p.name,
            "rp_id": p.rp_id,
            "transports": list(p.transports),
            "sign_count": p.sign_count,
            "created_at": p.created_at,
            "last_used_at": p.last_used_at,
        }
        for p in found
    ]
    return common.print_list(
        ("ID", "USER", "NAME", "FOR", "CREATED", "LAST USED"),
        rows,
        records,
        as_json=args.json,
        empty="No passkeys. People add them on their account page (/.gateway/account).",
    )


def cmd_remove(args: argparse.Namespace) -> int:
    with open_db(common.settings(args)) as conn:
        removed = passkeys.remove_passkey(conn, args.id, actor=actor())
    print(f"removed passkey {removed.id} ({removed.name}) of {removed.user_name}")
    return EXIT_OK


def register(commands: common.Commands) -> None:
    group = common.resource(commands, "passkey", "passkeys people log in with")
    common.action(
        group,
        "list",
        cmd_list,
        "list passkeys",
        (("--user",), {"metavar": "NAME", "help": "only this user's"}),
        common.JSON,
    )
    common.action(
        group,
        "remove",
        cmd_remove,
        "remove a passkey",
        (("id",), {"type": int, "help": "passkey ID (see 'passkey list')"}),
    )
