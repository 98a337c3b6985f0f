"""The ``cemm-gateway`` command.

Every subcommand that touches state takes ``--config FILE`` and works on the same data
directory as the running gateway, which notices the change within a second. Subcommands
call the service layer; none of them writes SQL.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import json
import logging
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from gateway.logs import setup_logging
from gateway.services import allowlist as allowlist_service
from gateway.services import audit as audit_service
from gateway.settings import Settings, SettingsError, load_settings
from gateway.store import db

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """A command that cannot be carried out; printed as ``error: ...`` with exit code 1."""


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


@contextmanager
def _open(settings: Settings) -> Iterator[sqlite3.Connection]:
    conn = db.connect(settings.database_path)
    try:
        yield conn
    finally:
        conn.close()


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


# -- run / demo / simulator ---------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from gateway.app import serve

    settings = _settings(args)
    setup_logging(settings.log.level, settings.log.format)
    asyncio.run(serve(settings))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    setup_logging("info", "text")
    return asyncio.run(run_demo(listen_host=args.listen_host))


def cmd_simulator(args: argparse.Namespace) -> int:
    from gateway import simulator

    return simulator.run_from_args(args)


# -- allow ------------------------------------------------------------------------------
def cmd_allow_add(args: argparse.Namespace) -> int:
    expires_in = allowlist_service.parse_duration(args.expires) if args.expires else None
    network = allowlist_service.normalise(args.network)
    with _open(_settings(args)) as conn:
        entry = allowlist_service.add_entry(
            conn, network, actor=_actor(), label=args.label or "", expires_in=expires_in
        )
    expiry = f", expires {_when(entry.expires_at)}" if entry.expires_at else ""
    print(f"allowed {entry.network}{expiry}")
    return EXIT_OK


def cmd_allow_remove(args: argparse.Namespace) -> int:
    network = allowlist_service.normalise(args.network)
    with _open(_settings(args)) as conn:
        allowlist_service.remove_entry(conn, network, actor=_actor())
    print(f"removed {network}")
    return EXIT_OK


def cmd_allow_list(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with _open(settings) as conn:
        entries = allowlist_service.list_entries(conn)
    now = dt.datetime.now().timestamp()
    if args.json:
        print(
            json.dumps(
                {
                    "default_networks": settings.allowlist.default_networks,
                    "entries": [
                        {**entry.__dict__, "active": entry.active(now)} for entry in entries
                    ],
                },
                indent=2,
            )
        )
        return EXIT_OK
    print("Always allowed ([allowlist] default_networks in the configuration):")
    for network in settings.allowlist.default_networks:
        print(f"  {network}")
    if not entries:
        print("No added entries. Add one with: cemm-gateway allow add 203.0.113.7 --label office")
        return EXIT_OK
    rows = [("NETWORK", "LABEL", "EXPIRES", "HITS", "LAST HIT", "ADDED BY")]
    for entry in entries:
        expires = _when(entry.expires_at)
        if not entry.active(now):
            expires += " (expired)"
        rows.append(
            (
                entry.network,
                entry.label or "-",
                expires,
                str(entry.hits),
                _when(entry.last_hit_at),
                entry.created_by,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print("Added entries:")
    for row in rows:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return EXIT_OK


# -- audit ------------------------------------------------------------------------------
def _parse_since(text: str) -> float:
    try:
        return dt.datetime.now().timestamp() - allowlist_service.parse_duration(text)
    except allowlist_service.AllowlistError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"--since '{text}' is neither a duration nor a date; examples: 7d, 2026-11-01, "
            "2026-11-01T08:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.timestamp()


def cmd_audit(args: argparse.Namespace) -> int:
    since = _parse_since(args.since) if args.since else None
    with _open(_settings(args)) as conn:
        entries = audit_service.entries(conn, since=since, limit=args.limit)
    if args.json:
        print(json.dumps([entry.__dict__ for entry in entries], indent=2))
        return EXIT_OK
    if not entries:
        print("No audit entries" + (" in that period." if since else "."))
        return EXIT_OK
    for entry in entries:
        detail = " ".join(f"{key}={value}" for key, value in entry.detail.items())
        where = f" from {entry.client_address}" if entry.client_address else ""
        print(f"{_when(entry.at)}  {entry.event:<20} {entry.actor}{where}  {detail}")
    return EXIT_OK


# -- parser -----------------------------------------------------------------------------
def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help="the gateway's TOML configuration (default: $CEMM_GATEWAY_CONFIG, else built-in "
        "defaults and CEMM_GATEWAY_* environment variables)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cemm-gateway",
        description="Secure remote-access gateway for the CEMM energy management module.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the gateway")
    _config_option(run)
    run.set_defaults(handler=cmd_run)

    demo = commands.add_parser(
        "demo", help="run the gateway in front of the built-in CEMM simulator"
    )
    demo.add_argument(
        "--listen-host",
        default="127.0.0.1",
        help="address the demo gateway listens on (default 127.0.0.1; use 0.0.0.0 to try "
        "it from a phone on your LAN)",
    )
    demo.set_defaults(handler=cmd_demo)

    from gateway import simulator

    sim = commands.add_parser("simulator", help="run the CEMM simulator on its own")
    simulator.add_arguments(sim)
    sim.set_defaults(handler=cmd_simulator)

    allow = commands.add_parser("allow", help="manage the IP allowlist")
    allow_commands = allow.add_subparsers(dest="allow_command", required=True, metavar="ACTION")
    add = allow_commands.add_parser("add", help="allow a network or address")
    add.add_argument("network", help="IPv4/IPv6 network or address, e.g. 203.0.113.0/24")
    add.add_argument("--label", help="what this entry is for, e.g. 'office'")
    add.add_argument("--expires", metavar="DURATION", help="e.g. 12h, 7d, 2w (default: never)")
    _config_option(add)
    add.set_defaults(handler=cmd_allow_add)
    remove = allow_commands.add_parser("remove", help="remove an entry")
    remove.add_argument("network")
    _config_option(remove)
    remove.set_defaults(handler=cmd_allow_remove)
    listing = allow_commands.add_parser("list", help="show the entries")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    _config_option(listing)
    listing.set_defaults(handler=cmd_allow_list)

    audit = commands.add_parser("audit", help="show the audit log, newest first")
    audit.add_argument("--since", help="a duration (7d) or a date (2026-11-01)")
    audit.add_argument("--limit", type=int, default=1000)
    audit.add_argument("--json", action="store_true", help="machine-readable output")
    _config_option(audit)
    audit.set_defaults(handler=cmd_audit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (SettingsError, CommandError, allowlist_service.AllowlistError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except db.StoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        from gateway.proxy.engine import EngineError

        if isinstance(error, EngineError):
            logging.getLogger("cemm_gateway").error("%s", error)
            return EXIT_FAILURE
        raise


if __name__ == "__main__":
    sys.exit(main())
