"""``cemm-gateway notify test``: send a test message to every receiver now: those of
``[notify]``, or those set in the admin app where the file and the environment leave room.

The receivers are shown masked (their URLs carry secrets). Exit code 1 when none is
configured or one did not take the message.
"""

from __future__ import annotations

import argparse

from gateway.cli import common
from gateway.cli.common import EXIT_OK, CommandError
from gateway.notify import runtime
from gateway.services import runtime_settings
from gateway.settings import Settings


def _in_force(args: argparse.Namespace) -> Settings:
    """The settings with the receivers and events set in the admin app."""
    settings = common.settings(args)
    with common.open_db(settings) as conn:
        return runtime_settings.in_force(conn, settings)


def cmd_test(args: argparse.Namespace) -> int:
    try:
        receivers = runtime.send_test_now(_in_force(args), common.actor())
    except runtime.DeliveryError as error:
        raise CommandError(str(error)) from None
    print(f"Sent a test message to {', '.join(receivers)}.")
    return EXIT_OK


def register(commands: common.Commands) -> None:
    group = common.resource(commands, "notify", "notifications to the owner")
    common.action(group, "test", cmd_test, "send a test message to every receiver")
