"""What every ``cemm-gateway`` subcommand shares: settings, the database, tables, refusals.

:func:`settings` is how a management command finds the gateway it manages: ``--config
FILE`` (before or after the subcommand), else ``$CEMM_GATEWAY_CONFIG``, else the built-in
defaults, with ``CEMM_GATEWAY_*`` environment variables on top. When none of these says
anything and the default data directory holds no database, the command is being run away
from any gateway (on the host instead of in its container, say): it refuses and says where
it looked, rather than create an empty database under ``/data`` and change that.

:func:`run` is the one place that turns what a command raises into what the person sees:
a refusal - a :class:`~gateway.services.errors.ServiceError` from a service (a duration
that is not one included), a :class:`~gateway.settings.SettingsError`, a
:class:`CommandError` of the CLI itself, a store error - is one line ``error: <message>``
on standard error and exit code 1; Ctrl-C is exit code 130; anything else is a bug and
shows its traceback.

:func:`plain` is how text others chose (a user name typed at the login page, a passkey's or
token's name) reaches the admin's terminal: control characters escaped, since ESC there
starts a command (set the title, clear the screen, write the clipboard). :func:`table` and
the audit listing show every cell through it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway.clock import SYSTEM_CLOCK
from gateway.services.errors import ServiceError
from gateway.settings import (
    CONFIG_ENV,
    Settings,
    SettingsError,
    environment_variables,
    load_settings,
)
from gateway.store import db

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

Handler = Callable[[argparse.Namespace], int]
Commands = argparse._SubParsersAction
Row = tuple[str, ...]
Argument = tuple[tuple[str, ...], dict[str, Any]]

JSON: Argument = (("--json",), {"action": "store_true", "help": "machine-readable output"})


class CommandError(Exception):
    """A command that cannot be carried out; printed as ``error: ...`` with exit code 1."""


def run(handler: Handler, args: argparse.Namespace) -> int:
    """Carry out a command; its exit code. Refusals are mapped here, and only here."""
    try:
        return handler(args)
    except (SettingsError, CommandError, ServiceError, db.StoreError) as error:
        return _refused(str(error))
    except sqlite3.Error as error:
        return _refused(
            f"the database could not be written ({error}); nothing was changed. If the "
            "data directory's disk is full, free some space and try again."
        )
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:
        from gateway.proxy.engine import EngineError

        if isinstance(error, EngineError):
            logging.getLogger("cemm_gateway").error("%s", error)
            return EXIT_FAILURE
        raise


def _refused(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_FAILURE


def actor() -> str:
    """Who the audit log names for a change made here: ``cli:<login name>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def now() -> float:
    """The gateway's clock: the CLI reads the time where the services do."""
    return SYSTEM_CLOCK.now()


def settings(args: argparse.Namespace) -> Settings:
    """The settings of a management command; refuses when there is no gateway to manage."""
    loaded = load_settings(args.config)
    configured = args.config is not None or os.environ.get(CONFIG_ENV) or environment_variables()
    if not configured and not loaded.database_path.exists():
        raise CommandError(
            "no gateway to manage here. Looked for a configuration file in --config FILE "
            f"(not given) and ${CONFIG_ENV} (not set), for CEMM_GATEWAY_* settings in the "
            f"environment (none), and for a database in the data directory "
            f"{loaded.data_dir} (no {loaded.database_path.name}). Give the gateway's "
            "configuration with --config FILE, or run the command where the gateway runs "
            "(e.g. docker compose exec gateway cemm-gateway ...)"
        )
    return loaded


@contextmanager
def open_db(settings: Settings) -> Iterator[sqlite3.Connection]:
    conn = db.connect(settings.database_path)
    try:
        yield conn
    finally:
        conn.close()


def when(timestamp: float | None) -> str:
    """A moment in local time, to the second; ``-`` for none."""
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def plain(text: str) -> str:
    """``text`` with its control characters (C0, DEL, C1) written as ``\\xNN``."""
    return "".join(f"\\x{ord(c):02x}" if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in text)


def table(header: Row, rows: Sequence[Row], *, indent: str = "") -> None:
    """Print the header and rows in left-aligned columns, two spaces apart.

    Every cell, the last of a line too, is padded to the width of its column's widest cell;
    cells are shown :func:`plain`.
    """
    lines = [[plain(cell) for cell in line] for line in [header, *rows]]
    widths = [max(map(len, column)) for column in zip(*lines, strict=True)]
    for line in lines:
        print(
            indent + "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        )


def print_list(
    header: Row,
    rows: Sequence[Row],
    records: object,
    *,
    as_json: bool,
    empty: str | None = None,
) -> int:
    """Print a list command's result; its exit code.

    With ``as_json``: ``records`` as JSON. Else the table, or ``empty`` in its place when
    there are no rows (without ``empty``, an empty list is the header alone).
    """
    if as_json:
        print(json.dumps(records, indent=2))
    elif rows or empty is None:
        table(header, rows)
    else:
        print(empty)
    return EXIT_OK


def config_option(parser: argparse.ArgumentParser, *, top_level: bool = False) -> None:
    """``--config FILE``. On the top-level parser it defaults to None; on a subcommand it
    is left out when not given, so one given before the subcommand stays."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        default=None if top_level else argparse.SUPPRESS,
        help="the gateway's TOML configuration (default: $CEMM_GATEWAY_CONFIG, else built-in "
        "defaults and CEMM_GATEWAY_* environment variables)",
    )


def action(
    group: Commands,
    name: str,
    handler: Handler,
    help_text: str,
    *arguments: Argument,
) -> argparse.ArgumentParser:
    """A subcommand of ``group``: its arguments, then ``--config``, then its handler."""
    parser: argparse.ArgumentParser = group.add_parser(name, help=help_text)
    for flags, options in arguments:
        parser.add_argument(*flags, **options)
    config_option(parser)
    parser.set_defaults(handler=handler)
    return parser


def resource(commands: Commands, name: str, help_text: str) -> Commands:
    """A command with actions (``cemm-gateway user ACTION``); the group to add them to."""
    parser = commands.add_parser(name, help=help_text)
    config_option(parser)
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")
