"""CPU profiles of a proxy under load (py-spy), split into what is ours and mitmproxy's.

A sample counts as **ours** when any frame in it is gateway code (``addons/``,
``gateway/``) other than the entry point that runs the event loop: our hooks, including
the mitmproxy helpers they call (``Headers.get_all`` and the like). Otherwise it is
**mitmproxy's** when a mitmproxy frame is in it (the proxy core: parsing, layers, hook
dispatch, connection handling), else **other** (the event loop, socket I/O, threads).
Samples are only taken while the process is busy, so shares are of busy CPU time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from bench.procs import ROOT

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
_ENTRY_FILES = (
    "gateway/__main__.py",
    "gateway/cli/__init__.py",
    "gateway/cli/common.py",
    "gateway/cli/server.py",
)
# Our wrappers around mitmproxy internals: what runs inside them is mitmproxy's.
_TRANSPARENT = ("bounded_read_headers",)


def py_spy() -> str | None:
    local = ROOT / ".venv" / "bin" / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path, rate: int = 250) -> Path | None:
    binary = py_spy()
    if binary is None:
        return None
    subprocess.run(
        [
            binary,
            "record",
            "-p",
            str(pid),
            "-d",
            str(max(1, round(seconds))),
            "-r",
            str(rate),
            "-f",
            "raw",
            "-o",
            str(out),
            "--nonblocking",
        ],
        capture_output=True,
        timeout=seconds + 60,
        check=False,
    )
    return out if out.exists() else None


def _parse(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame)
    if not match:
        return frame, ""
    return match.group("func"), match.group("file")


def _ours(file: str) -> bool:
    return (
        (file.startswith(("addons/", "gateway/")) or "/addons/" in file or "/gateway/" in file)
        and not file.endswith(_ENTRY_FILES)
        and "mitmproxy/" not in file
    )


_WRAPPERS = ("fail_closed.", "_dispatcher.")


def summarize(raw: Path, top: int = 12) -> dict[str, Any]:
    total = 0
    owner: Counter[str] = Counter()
    our_functions: Counter[str] = Counter()
    mitm_self: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        total += count
        frames = [_parse(f) for f in stack.split(";")]
        ours = [
            f"{func} ({file})"
            for func, file in frames
            if _ours(file) and not func.endswith(_TRANSPARENT)
        ]
        if ours:
            owner["ours"] += count
            # The outermost of our frames below the addon chain's dispatch and the
            # fail-closed wrapper: the hook.
            hooks = [f for f in ours if not f.startswith(_WRAPPERS)] or ours
            our_functions[hooks[0]] += count
        elif any("mitmproxy/" in file for _, file in frames):
            owner["mitmproxy"] += count
            func, file = frames[-1]
            mitm_self[f"{func} ({file})"] += count
        else:
            owner["other"] += count
    share = {k: (v / total if total else 0.0) for k, v in owner.items()}
    return {
        "samples": total,
        "share": share,
        "our_hooks": [(name, n / total) for name, n in our_functions.most_common(top)],
        "mitmproxy_self": [(name, n / total) for name, n in mitm_self.most_common(top)],
    }
