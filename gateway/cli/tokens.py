"""``cemm-gateway token``: API tokens for scripts and Home Assistant (add, list, revoke).
A new token is printed once, on standard output alone, so a script can capture it."""

from __future__ import annotations

import argparse
import sys

from gateway import durations
from gateway.cli import common
from gateway.cli.common import EXIT_OK, actor, open_db, when
from gateway.services import api_tokens


def cmd_add(args: argparse.Namespace) -> int:
    expires_in = durations.parse_duration(args.expires) if args.expires else None
    with open_db(common.settings(args)) as conn:
        token, record = api_tokens.create_token(
            conn,
            args.user,
            name=args.name,
            read_only=args.read_only,
            expires_in=expires_in,
            actor=actor(),
            scopes=args.scope or (),
        )
    print(token)
    kind = "read-only " if record.read_only else ""
    if record.scopes:
        kind = f"{kind}scoped ({', '.join(record.scopes)}) "
    print(
        f"{kind}token {record.id} for {record.user_name}; shown once. Use it as the header "
        "'Authorization: Bearer <token>'.",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    with open_db(common.settings(args)) as conn:
        found = api_tokens.list_tokens(conn, user_name=args.user)
    now = common.now()
    rows = [
        (
            token.id,
            token.user_name,
            token.name,
            _access(token),
            when(token.expires_at),
            when(token.last_used_at),
            "active" if token.active_at(now) else ("revoked" if token.revoked_at else "expired"),
        )
        for token in found
    ]
    return common.print_list(
        ("ID", "USER", "NAME", "ACCESS", "EXPIRES", "LAST USED", "STATE"),
        rows,
        [_record(token, now) for token in found],
        as_json=args.json,
        empty="No API tokens. Create one with: cemm-gateway token add USER --name 'home assistant'",
    )


def _access(token: api_tokens.ApiToken) -> str:
    access = "read-only" if token.read_only else "full"
    return f"{access} {' '.join(token.scopes)}" if token.scopes else access


def _record(token: api_tokens.ApiToken, now: float) -> dict[str, object]:
    record: dict[str, object] = {**token.__dict__, "active": token.active_at(now)}
    if not token.scopes:
        del record["scopes"]  # an unscoped token's record reads as it always has
    return record


def cmd_revoke(args: argparse.Namespace) -> int:
    with open_db(common.settings(args)) as conn:
        api_tokens.revoke_token(conn, args.id, actor=actor())
    print(f"revoked token {args.id}")
    return EXIT_OK


def register(commands: common.Commands) -> None:
    group = common.resource(commands, "token", "API tokens for scripts and Home Assistant")
    common.action(
        group,
        "add",
        cmd_add,
        "create a token (printed once)",
        (("user",), {"help": "the user the token acts as"}),
        (("--name",), {"required": True, "help": "what it is for, e.g. 'home assistant'"}),
        (("--read-only",), {"action": "store_true", "help": "allow only GET and HEAD"}),
        (("--expires",), {"metavar": "DURATION", "help": "e.g. 90d (default: never)"}),
        (
            ("--scope",),
            {
                "action": "append",
                "metavar": "PATH",
                "help": "allow only plain HTTP requests on the web port under this prefix, "
                "e.g. /api/v1/public/; ws:PATH allows only WebSocket upgrades to that path "
                "of the WebSocket port, e.g. ws:/live (repeatable)",
            },
        ),
    )
    common.action(
        group,
        "list",
        cmd_list,
        "list tokens",
        (("--user",), {"help": "only this user's"}),
        common.JSON,
    )
    common.action(group, "revoke", cmd_revoke, "revoke a token", (("id",), {"help": "token ID"}))
