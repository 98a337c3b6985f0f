"""The gateway raises its soft open-file limit to the hard limit at start-up."""

from __future__ import annotations

import resource
import subprocess
import sys

from tests.support.gateway import ROOT

PROBE = (
    "import resource; from gateway.system.limits import raise_open_file_limit;"
    "print(raise_open_file_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
)


def _probe(soft: int, hard: int) -> list[int]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        preexec_fn=limit,
        timeout=30,
    )
    return [int(n) for n in out.stdout.split()]


def test_soft_limit_is_raised_to_the_hard_limit() -> None:
    assert _probe(256, 2048) == [2048, 2048]


def test_a_soft_limit_already_at_the_hard_limit_stays() -> None:
    assert _probe(1024, 1024) == [1024, 1024]
