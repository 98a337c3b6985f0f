"""``cemm-gateway run``, ``check``, ``demo`` and ``simulator``: the commands that serve.

``run`` is the gateway itself (what the container starts); ``check`` validates the
configuration as ``run`` does before it starts - every key, then the rules across keys -
and exits 0 with one line, or 1 naming the key and the problem (like ``nginx -t``);
``demo`` runs the gateway in front of the built-in CEMM simulator; ``simulator`` runs the
simulator alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from gateway.cli import common
from gateway.cli.common import EXIT_OK, CommandError
from gateway.logs import setup_logging
from gateway.settings import CONFIG_ENV, check_startup, environment_variables, load_settings


def cmd_run(args: argparse.Namespace) -> int:
    from gateway.app import serve

    settings = load_settings(args.config)
    setup_logging(settings.log.level, settings.log.format)
    asyncio.run(serve(settings))
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    check_startup(load_settings(args.config))
    path = args.config or os.environ.get(CONFIG_ENV)
    source = str(path) if path else "built-in defaults"
    variables = len(environment_variables())
    if variables:
        source += f" and {variables} setting(s) from the environment"
    print(f"configuration OK: {source}")
    return EXIT_OK


def _without_config(args: argparse.Namespace) -> None:
    # The top-level --config is accepted before any command; these two have their own.
    if args.config is not None:
        raise CommandError(
            f"'{args.command}' runs with its own built-in configuration; --config is not used"
        )


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    _without_config(args)
    setup_logging("info", "text")
    return asyncio.run(run_demo(listen_host=args.listen_host))


def cmd_simulator(args: argparse.Namespace) -> int:
    from gateway import simulator

    _without_config(args)
    return simulator.run_from_args(args)


def register(commands: common.Commands) -> None:
    run = commands.add_parser("run", help="run the gateway")
    common.config_option(run)
    run.set_defaults(handler=cmd_run)

    check = commands.add_parser(
        "check", help="validate the configuration as 'run' would, then exit (0: valid)"
    )
    common.config_option(check)
    check.set_defaults(handler=cmd_check)

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
