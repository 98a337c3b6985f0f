"""``python -m gateway.simulator``: run a simulated CEMM until Ctrl+C or SIGTERM."""

from __future__ import annotations

import argparse
import sys

from gateway.simulator.cli import add_arguments, run_from_args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.simulator",
        description="Simulated CEMM: web site, public API and live-data WebSocket.",
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
