"""``cemm-gateway guest``: time-limited links for people without an account (add, list,
revoke). ``add`` prints the whole link on standard output alone (a script can capture it)
and, with ``--qr``, a QR code of it on standard error."""

from __future__ import annotations

import argparse
import sys

from gateway.cli import common
from gateway.cli.common import EXIT_OK, actor, open_db, when
from gateway.netutil import machine_names
from gateway.policy import names
from gateway.services import guests
from gateway.settings import Settings


def guest_url(settings: Settings, token: str) -> str:
    """The link as a whole URL on the gateway's web port (as peer links print theirs)."""
    listen = settings.listen
    addresses = machine_names(listen.host)
    return names.web_url(
        guests.LINK_PATH + token,
        public_url=listen.public_url,
        names=names.own_names(public_url=listen.public_url, addresses=addresses),
        host=None,
        addresses=addresses,
        tls=settings.tls.enabled,
        web_port=listen.http_port,
    )


def cmd_add(args: argparse.Namespace) -> int:
    settings = common.settings(args)
    deadline = guests.parse_deadline(args.expires, now=common.now())
    with open_db(settings) as conn:
        token, link = guests.create_link(
            conn,
            args.name,
            role=args.role,
            expires_at=deadline,
            browsers=args.browsers,
            actor=actor(),
        )
    url = guest_url(settings, token)
    print(url)
    if args.qr:
        from gateway.qr import qr_text

        print(qr_text(url), file=sys.stderr)
    print(
        f"# guest link {link.id} ({link.role}) until {when(link.expires_at)}, for at most "
        f"{link.browsers} browser(s); shown once. Revoke it with: cemm-gateway guest revoke "
        f"{link.id}",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    with open_db(common.settings(args)) as conn:
        found = guests.list_links(conn)
    now = common.now()
    rows = [
        (
            str(link.id),
            link.name,
            link.role,
            when(link.expires_at),
            f"{link.sessions}/{link.browsers}",
            when(link.first_used_at),
            link.state(now),
        )
        for link in found
    ]
    return common.print_list(
        ("ID", "NAME", "ROLE", "EXPIRES", "BROWSERS", "FIRST USED", "STATE"),
        rows,
        [{**link.__dict__, "state": link.state(now)} for link in found],
        as_json=args.json,
        empty="No guest links. Make one with: cemm-gateway guest add 'installer Jan' "
        "--role viewer --expires 8h",
    )


def cmd_revoke(args: argparse.Namespace) -> int:
    with open_db(common.settings(args)) as conn:
        link = guests.revoke_link(conn, args.id, actor=actor())
    print(f"revoked guest link {link.id} ({link.name})")
    return EXIT_OK


def register(commands: common.Commands) -> None:
    group = common.resource(commands, "guest", "time-limited guest links (an installer)")
    common.action(
        group,
        "add",
        cmd_add,
        "make a guest link (printed once)",
        (("name",), {"help": "who it is for, e.g. 'installer Jan'"}),
        (
            ("--role",),
            {"choices": list(guests.GUEST_ROLES), "default": "viewer", "help": "default: viewer"},
        ),
        (
            ("--expires",),
            {
                "required": True,
                "metavar": "WHEN",
                "help": "a duration (8h) or a moment (2026-12-12T17:00)",
            },
        ),
        (
            ("--browsers",),
            {"type": int, "default": 1, "help": "how many browsers it may open (default 1)"},
        ),
        (("--qr",), {"action": "store_true", "help": "also print a QR code"}),
    )
    common.action(group, "list", cmd_list, "list guest links", common.JSON)
    common.action(
        group,
        "revoke",
        cmd_revoke,
        "end a guest link and close its sessions",
        (("id",), {"type": int, "help": "guest link ID"}),
    )
