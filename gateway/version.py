"""The gateway's version: the one the installed package's metadata states.

``pyproject.toml`` is where the version is written; the CLI (``cemm-gateway --version``)
and the admin API report it from the metadata the installer made from that file, so the
three never disagree. A source tree that was never installed has no metadata: the version
is then ``unknown``.
"""

from __future__ import annotations

from functools import cache
from importlib import metadata

__all__ = ["DISTRIBUTION", "version"]

DISTRIBUTION = "cemm-gateway"  # [project] name in pyproject.toml


@cache
def version() -> str:
    """``0.1.0``: the installed distribution's version, or ``unknown``."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"
