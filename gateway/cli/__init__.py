"""The ``cemm-gateway`` command.

Every subcommand that touches state takes ``--config FILE`` (before or after the
subcommand; else ``$CEMM_GATEWAY_CONFIG``) and works on the same data directory as the
running gateway, which notices the change within a second. Subcommands call the service
layer; none of them writes SQL. ``cemm-gateway --version`` prints the installed version;
``cemm-gateway check`` validates the configuration as ``run`` would, and stops there.

One module per resource registers its subcommands (:mod:`.allowlist`, :mod:`.users`,
:mod:`.sessions`, :mod:`.tokens`, :mod:`.passkeys`, :mod:`.bans`, :mod:`.peers`, :mod:`.audit`,
:mod:`.backup`, :mod:`.cert`; the serving commands in :mod:`.server`); :mod:`.common` holds
what they share, and in :func:`.common.run` the one place where a refusal becomes
``error: ...`` and an exit code.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from gateway.cli import (
    allowlist,
    audit,
    backup,
    bans,
    cert,
    common,
    guests,
    notify,
    passkeys,
    peers,
    server,
    sessions,
    tokens,
    users,
)
from gateway.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CommandError
from gateway.version import version

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "CommandError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cemm-gateway",
        description="Secure remote-access gateway for the CEMM energy management module.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    common.config_option(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (
        server,
        allowlist,
        users,
        sessions,
        tokens,
        passkeys,
        bans,
        peers,
        audit,
        guests,
        notify,
        backup,
        cert,
    ):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.run(args.handler, args)
