"""The benchmark's smoke run: ``python bench/run.py --quick`` completes and writes its table.

No target is enforced here (CI machines are noisy); what must hold is that every scenario
ran on every system and the results were written. It needs root (its own network
namespace, apt-get for nginx/wrk/htpasswd) and Debian's Chromium: without them it is
skipped locally and fails in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.alwayson import FEATURES
from tests.support.ci import cannot_run

ROOT = Path(__file__).resolve().parents[2]


def _missing() -> list[str]:
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    if not Path("/usr/bin/chromium").exists():
        missing.append("/usr/bin/chromium")
    if os.geteuid() != 0:
        # Only root can install these; as root the runner installs them itself.
        missing += [t for t in ("nginx", "wrk", "htpasswd") if shutil.which(t) is None]
    return missing


@pytest.mark.timeout(1200)
def test_quick_benchmark_completes(tmp_path: Path) -> None:
    missing = _missing()
    if missing:
        cannot_run(f"the benchmark smoke run needs {', '.join(missing)}")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1140,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = (out / "results.md").read_text()
    results = json.loads((out / "results.json").read_text())
    assert "## Targets" in table
    assert (out / "results.png").stat().st_size > 10_000
    # Every scenario produced numbers for the systems it is about.
    for system in ("direct", "gateway", "gateway-noauth", "mitmdump", "lean", "nginx"):
        assert results["http"][system]["c1"] and results["http"][system]["c16"], system
    assert results["http"]["nginx-auth"]["c16"]
    for system in ("direct", "gateway", "mitmdump"):
        assert results["ws_rtt"][system], system
        assert results["fanout"]["100"][system], system
        assert results["fanout"]["1000"][system], system
    assert len(results["browser"]["gateway"]) >= 3
    assert results["startup"]["gateway"] and results["startup"]["gateway-first"]
    assert results["soak"]["slope_mb_per_min"]["gateway"] is not None
    # What an always-on box costs (bench/alwayson.py): numbers, never judged here.
    idle = results["idle"]["systems"]
    for key in ("gateway-idle", "gateway-idle-full", *(f"gateway-idle+{f}" for f in FEATURES)):
        assert idle[key]["cpu_seconds"] >= 0 and idle[key]["rss_mb"] > 20, key
        assert idle[key]["wakeups_per_s"] > 0, key
    assert results["startup"]["gateway-full"]
    deadrx = results["deadrx"]
    assert deadrx["ratios"] and deadrx["deliveries_attempted"] >= 1
    # Both arms' loads ran with wrong logins of their own.
    for arm in ("gateway-notify-dead", "gateway-notify-off"):
        assert all(run["wrong_logins"] > 0 for run in deadrx["runs"][arm]), arm
    storm = results["storm"]
    assert sum(storm["statuses"].values()) == storm["logins"] == 200
    assert storm["person_during"] > 0 and storm["rss_growth_mb"] == storm["rss_growth_mb"]
    assert results["meta"]["scenario_seconds"]["storm"] > 0
    # Every target was evaluated (PASS or MISS, none left out for want of data).
    assert all(t["status"] in ("PASS", "MISS") for t in results["targets"]), [
        t for t in results["targets"] if t["status"] not in ("PASS", "MISS")
    ]
