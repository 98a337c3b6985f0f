"""Fixtures of the browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.admin import AdminEnv
from tests.support.browser import chromium


@pytest.fixture(scope="module")
def browser(env: AdminEnv) -> Iterator[Any]:
    """Chromium for a test module, launched once the module's gateway (``env``) is up."""
    with chromium() as launched:
        yield launched
