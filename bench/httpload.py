"""HTTP load with ``wrk`` (Debian's): requests/s and latency percentiles."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    result: dict[str, Any] = {"non_2xx": 0, "socket_errors": 0}
    for label, key in (("50%", "p50_ms"), ("99%", "p99_ms")):
        match = re.search(rf"^\s+{re.escape(label)}\s+(\S+)\s*$", output, re.MULTILINE)
        if match:
            result[key] = _ms(match.group(1))
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match:
        result["rps"] = float(match.group(1))
    match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if match:
        result["non_2xx"] = int(match.group(1))
    match = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if match:
        result["socket_errors"] = sum(int(g) for g in match.groups())
    match = re.search(r"(\d+) requests in", output)
    if match:
        result["requests"] = int(match.group(1))
    if "rps" not in result or "p50_ms" not in result:
        raise ValueError(f"unreadable wrk output:\n{output}")
    return result


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def run_wrk(
    url: str, headers: dict[str, str], *, connections: int, seconds: float, timeout_s: int = 5
) -> dict[str, Any]:
    binary = wrk_binary()
    if binary is None:
        raise RuntimeError("wrk is not installed")
    argv = [binary, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    argv += [f"--timeout={timeout_s}s"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    completed = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds + timeout_s + 30
    )
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed: {completed.stderr.strip() or completed.stdout}")
    result = parse_wrk(completed.stdout)
    if result.get("requests", 0) and result["non_2xx"] > result["requests"] * 0.01:
        raise RuntimeError(f"{result['non_2xx']} non-2xx answers from {url}")
    return result
