"""Debian's Chromium driven by Playwright, for end-to-end tests.

Never a downloaded browser: Playwright launches ``/usr/bin/chromium`` (``apt-get install
chromium``). Without it the tests skip on a laptop and fail in CI
(:func:`tests.support.ci.cannot_run`), like the namespace tests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.ci import cannot_run

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def require_chromium() -> None:
    if os.path.exists(CHROMIUM) and shutil.which("chromium"):
        return
    reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    cannot_run(reason)


@contextmanager
def chromium() -> Iterator[object]:
    """A launched Playwright browser (sync API); closed on exit."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()
