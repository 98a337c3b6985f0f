"""axe-core, the accessibility engine, for the browser tests: fetched, not vendored.

``axe.min.js`` of the pinned :data:`VERSION` is fetched once per machine with npm (``npm
pack``, the registry's ordinary client) into a cache directory outside the repository
(``$CEMM_GATEWAY_TEST_CACHE``, else ``~/.cache/cemm-gateway``) and checked against
:data:`SHA256` before use. Why not a copy in the repository: 650 KB of minified
third-party code (MPL-2.0) would sit in every clone and its history, while the pin and
the hash already make each run use exactly the same file. Without npm, or without the
registry, the tests that need it skip on a laptop and fail in CI
(:func:`tests.support.ci.cannot_run`).

:func:`serious_violations` injects it into a page (the context must be made with
``bypass_csp=True``: the pages' own policies admit no inline script, rightly) and returns
the violations whose impact is ``serious`` or ``critical``, one line each.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from tests.support.ci import cannot_run

VERSION = "4.14.1"
SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
# What is checked: WCAG 2.x A and AA, and axe's best practices (touch targets among them).
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def cache_dir() -> Path:
    root = os.environ.get("CEMM_GATEWAY_TEST_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "cemm-gateway"


def _fetch(target: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        cannot_run("npm is missing (apt-get install npm): it fetches axe-core")
    with tempfile.TemporaryDirectory() as work:
        try:
            subprocess.run(
                [npm, "pack", f"axe-core@{VERSION}", "--silent"],
                cwd=work,
                check=True,
                capture_output=True,
                timeout=300,
            )
        except (subprocess.SubprocessError, OSError) as error:
            cannot_run(f"npm could not fetch axe-core@{VERSION}: {error}")
        with tarfile.open(Path(work) / f"axe-core-{VERSION}.tgz") as archive:
            member = archive.extractfile("package/axe.min.js")
            assert member is not None
            data = member.read()
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise AssertionError(f"axe-core@{VERSION} from npm is not the file pinned in {__file__}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(target)


@cache
def axe_source() -> str:
    """The pinned ``axe.min.js``, fetched into the cache on first use."""
    target = cache_dir() / f"axe-core-{VERSION}.min.js"
    if not target.exists() or hashlib.sha256(target.read_bytes()).hexdigest() != SHA256:
        _fetch(target)
    return target.read_text()


def serious_violations(page: Any) -> list[str]:
    """The page's serious and critical axe violations, as ``rule: target - help`` lines."""
    page.add_script_tag(content=axe_source())
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        TAGS,
    )
    return [
        f"{violation['id']} ({violation['impact']}): "
        f"{', '.join(str(node['target']) for node in violation['nodes'][:5])} - "
        f"{violation['help']}"
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
