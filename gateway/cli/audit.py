"""``cemm-gateway audit``: the audit log, newest first, as a listing, JSON or CSV.

``--since`` and ``--until`` take a duration back from now (``7d``) or a moment
(``2026-11-01``, ``2026-11-01T08:00``; local time without an offset), read by
:mod:`gateway.durations` as everywhere else.
"""

from __future__ import annotations

import argparse
import json
import sys

from gateway import durations
from gateway.cli import common
from gateway.cli.common import EXIT_OK, CommandError, open_db, when
from gateway.services import audit as audit_service

LIST_LIMIT = 1000


def parse_moment(text: str, option: str) -> float:
    """``--since``/``--until``: a duration back from now (7d) or a date (local time when it
    has no offset)."""
    try:
        return common.now() - durations.parse_duration(text)
    except durations.DurationError:
        pass
    try:
        moment = durations.parse_moment(text)
    except durations.DurationError:
        raise CommandError(
            f"{option} '{text}' is neither a duration nor a date; examples: 7d, 2026-11-01, "
            "2026-11-01T08:00"
        ) from None
    try:
        return durations.timestamp(moment)
    except durations.DurationError as error:
        raise CommandError(f"{option} {error}") from None


def cmd_audit(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise CommandError("--limit must be at least 1")
    # A CSV export holds every matching entry unless told otherwise; a listing, the newest.
    limit = args.limit or (None if args.csv else LIST_LIMIT)
    since = parse_moment(args.since, "--since") if args.since else None
    until = parse_moment(args.until, "--until") if args.until else None
    with open_db(common.settings(args)) as conn:
        entries = audit_service.search(
            conn, user=args.user, event=args.event, since=since, until=until, limit=limit
        )
    if args.csv:
        sys.stdout.write(audit_service.as_csv(entries))
        return EXIT_OK
    if args.json:
        print(json.dumps([entry.__dict__ for entry in entries], indent=2))
        return EXIT_OK
    if not entries:
        if args.user or args.event:
            print("No audit entries match.")
        else:
            print("No audit entries" + (" in that period." if since or until else "."))
        return EXIT_OK
    for entry in entries:
        detail = " ".join(f"{key}={value}" for key, value in entry.detail.items())
        where = f" from {entry.client_address}" if entry.client_address else ""
        line = f"{when(entry.at)}  {entry.event:<20} {entry.actor}{where}  {detail}"
        print(common.plain(line))
    return EXIT_OK


def register(commands: common.Commands) -> None:
    audit = commands.add_parser("audit", help="show the audit log, newest first")
    audit.add_argument("--since", help="from: a duration back (7d) or a date (2026-11-01)")
    audit.add_argument("--until", help="up to (not including): a duration back or a date")
    audit.add_argument("--user", help="entries made by or about this user")
    audit.add_argument("--event", help="an event (user.add) or a family of them (user)")
    audit.add_argument(
        "--limit",
        type=int,
        help=f"at most this many, newest first (default: {LIST_LIMIT}; with --csv, all)",
    )
    output = audit.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="machine-readable output")
    output.add_argument("--csv", action="store_true", help="CSV, as the admin page exports")
    common.config_option(audit)
    audit.set_defaults(handler=cmd_audit)
