"""Whether the tests run in CI, and the one way a test says "cannot run here".

CI is "set" when the ``CI`` environment variable has any truthy spelling (``true``, ``1``,
``yes``, ``True``...): everything except unset, empty, ``0``, ``false``, ``no`` and ``off``.
Under CI a skipped test is a failure - the suite's root hook (``tests/conftest.py``) turns
every skip into one, wherever it was raised - so a missing capability (root, namespaces,
Chromium, podman, zbarimg) can never make a CI run green by hiding its tests.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

FALSE_SPELLINGS = frozenset({"", "0", "false", "no", "off"})


def in_ci(environ: dict[str, str] | None = None) -> bool:
    """True when ``CI`` is set to anything but an empty or false-looking value."""
    value = (os.environ if environ is None else environ).get("CI", "")
    return value.strip().lower() not in FALSE_SPELLINGS


def cannot_run(reason: str) -> NoReturn:
    """Skip the calling test outside CI; fail it in CI, where a skip would hide a gap."""
    if in_ci():
        pytest.fail(f"cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)
