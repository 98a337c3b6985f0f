"""``cemm-gateway session``: login sessions (list, revoke one or all of a user's)."""

from __future__ import annotations

import argparse

from gateway.cli import common
from gateway.cli.common import EXIT_OK, CommandError, actor, open_db, when
from gateway.services import sessions, users


def cmd_list(args: argparse.Namespace) -> int:
    settings = common.settings(args)
    with open_db(settings) as conn:
        user_id = users.require_user(conn, args.user).id if args.user else None
        found = sessions.list_sessions(
            conn,
            now=common.now(),
            idle_timeout=settings.auth.session_idle_timeout,
            user_id=user_id,
        )
    rows = [
        (
            info.id,
            info.user_name,
            info.client_address or "-",
            when(info.last_seen_at),
            when(info.expires_at),
            (info.user_agent or "-")[:40],
        )
        for info in found
    ]
    return common.print_list(
        ("ID", "USER", "ADDRESS", "LAST SEEN", "EXPIRES", "DEVICE"),
        rows,
        [{k: v for k, v in info.__dict__.items() if k != "csrf_token"} for info in found],
        as_json=args.json,
        empty="No active sessions.",
    )


def cmd_revoke(args: argparse.Namespace) -> int:
    if bool(args.id) == bool(args.user):
        raise CommandError("give a session ID or --user NAME (one of the two)")
    with open_db(common.settings(args)) as conn:
        if args.user:
            ended = sessions.revoke_user_sessions(
                conn, users.require_user(conn, args.user), actor=actor()
            )
            print(f"ended {ended} session(s) of {args.user}")
        else:
            sessions.revoke_session(conn, args.id, actor=actor(), reason="revoked")
            print(f"ended session {args.id}")
    return EXIT_OK


def register(commands: common.Commands) -> None:
    group = common.resource(commands, "session", "list and end login sessions")
    common.action(
        group,
        "list",
        cmd_list,
        "list active sessions",
        (("--user",), {"help": "only this user's"}),
        common.JSON,
    )
    common.action(
        group,
        "revoke",
        cmd_revoke,
        "end a session (its WebSockets close too)",
        (("id",), {"nargs": "?", "help": "session ID from 'session list'"}),
        (("--user",), {"help": "end every session of this user"}),
    )
