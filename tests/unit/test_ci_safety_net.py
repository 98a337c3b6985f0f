"""Under CI no test may skip: ``in_ci()`` reads every truthy spelling, and the root
conftest turns a skip from anywhere (test body, fixture, collection, the ``root`` marker)
into a failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ci import in_ci

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value", ["true", "True", "TRUE", "1", "yes", "on", "github", " true "])
def test_truthy_spellings_are_ci(value: str) -> None:
    assert in_ci({"CI": value})


@pytest.mark.parametrize("value", [None, "", "0", "false", "False", "no", "off", "  "])
def test_unset_or_false_spellings_are_not_ci(value: str | None) -> None:
    assert not in_ci({} if value is None else {"CI": value})


SKIPPING = """
import os
import pytest

pytestmark = []


@pytest.fixture
def needs_something():
    pytest.skip("fixture cannot run here")


def test_body_skip():
    pytest.skip("body cannot run here")


def test_fixture_skip(needs_something):
    pass


@pytest.mark.skipif(True, reason="marked")
def test_marked_skip():
    pass


@pytest.mark.root
def test_root_marker():
    pass


def test_passes():
    pass
"""
MODULE_SKIP = """
import pytest

pytest.skip("module cannot run here", allow_module_level=True)


def test_never_collected():
    pass
"""


def _run(tmp_path: Path, ci: str | None, source: str) -> subprocess.CompletedProcess[str]:
    """Run ``source`` as a test module with this suite's root conftest as a plugin."""
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    root: needs root\n")
    module = tmp_path / "test_sample.py"
    module.write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:anyio",
            "-rA",
            "-q",
            str(module),
        ],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _outcomes(out: str) -> dict[str, str]:
    """Test name -> PASSED/FAILED/SKIPPED/ERROR from the ``-rA`` summary."""
    found = {}
    for line in out.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("PASSED", "FAILED", "SKIPPED", "ERROR") and "::" in rest:
            found[rest.split("::", 1)[1].split(" ", 1)[0]] = word
    return found


@pytest.mark.parametrize("ci", ["1", "true", "yes"])
def test_every_skip_fails_under_ci(tmp_path: Path, ci: str) -> None:
    done = _run(tmp_path, ci, SKIPPING)
    outcomes = _outcomes(done.stdout)
    root_outcome = "ERROR" if os.geteuid() != 0 else "PASSED"
    # A skip in a test's set-up (a fixture, a marker) becomes an error, in its body a failure.
    assert outcomes == {
        "test_body_skip": "FAILED",
        "test_fixture_skip": "ERROR",
        "test_marked_skip": "ERROR",
        "test_root_marker": root_outcome,
        "test_passes": "PASSED",
    }, done.stdout
    assert done.returncode == 1
    assert "a skip in CI hides a gap" in done.stdout


def test_a_module_level_skip_fails_collection_under_ci(tmp_path: Path) -> None:
    done = _run(tmp_path, "true", MODULE_SKIP)
    assert done.returncode == 2, done.stdout  # a collection error stops the run
    assert "skipped at collection under CI" in done.stdout
    assert "module cannot run here" in done.stdout


def test_skips_stay_skips_outside_ci(tmp_path: Path) -> None:
    done = _run(tmp_path, None, SKIPPING)
    assert done.returncode == 0, done.stdout
    skipped = 3 if os.geteuid() == 0 else 4
    assert f"{5 - skipped} passed, {skipped} skipped" in done.stdout.splitlines()[-1]


def test_property_tests_are_derandomized() -> None:
    """Every hypothesis test draws the same examples on every run: the suite's profile,
    inherited by a test's own ``@settings(...)``."""
    from hypothesis import settings

    assert settings.default.derandomize is True
    assert settings(max_examples=5).derandomize is True
