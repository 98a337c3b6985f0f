"""The benchmark runner: ``python bench/run.py [--quick] [--out DIR]`` (see bench/README.md).

Starts every system (each with a simulated CEMM of its own) on loopback - inside a network
namespace of its own when run as root - runs the scenarios, and writes ``results.md``,
``results.json`` and ``results.png`` to ``--out`` (default: this directory). Every process
it starts is ended by PID when it finishes, fails or is interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import alwayson, browser, httpload, procs, profile, report, systems
from bench.procs import PYTHON, ROOT, Procs
from bench.systems import System
from gateway.system.limits import raise_open_file_limit

DEBIAN_PACKAGES = {
    "nginx": "nginx-light",
    "wrk": "wrk",
    "htpasswd": "apache2-utils",
    "chromium": "chromium",
    # "Everything configured" (the idle and start-up scenarios): WireGuard without the
    # kernel module, its firewall rule, and ACME renewal checks against Pebble.
    "wireguard-go": "wireguard-go",
    "wg": "wireguard-tools",
    "nft": "nftables",
    "pebble-challtestsrv": "pebble",
}


@dataclass(frozen=True)
class Plan:
    http_reps: int
    http_seconds: float
    rtt_reps: int
    rtt_count: int
    fan100_reps: int
    fan100_seconds: float
    fan100_systems: tuple[str, ...]
    fan1000_reps: int
    fan1000_seconds: float
    fan1000_systems: tuple[str, ...]
    navigations: int
    startup_reps: int
    soak_seconds: float
    profile_seconds: float
    idle_seconds: float
    idle_settle: float
    startup_full_reps: int
    storm_seconds: float
    diagnostics: tuple[str, ...] = ()


FULL = Plan(
    http_reps=5,
    http_seconds=8,
    rtt_reps=3,
    rtt_count=2000,
    fan100_reps=2,
    fan100_seconds=60,
    fan100_systems=("direct", "gateway", "mitmdump", "nginx", "nginx-auth"),
    fan1000_reps=3,
    fan1000_seconds=60,
    fan1000_systems=("direct", "gateway", "mitmdump", "nginx"),
    navigations=20,
    startup_reps=5,
    soak_seconds=600,
    profile_seconds=10,
    idle_seconds=300,
    idle_settle=15,
    startup_full_reps=5,
    storm_seconds=90,
    diagnostics=("lean-noop10", "lean-stream", "gateway-unchained"),
)
QUICK = Plan(
    http_reps=1,
    http_seconds=2,
    rtt_reps=1,
    rtt_count=200,
    fan100_reps=1,
    fan100_seconds=5,
    fan100_systems=("direct", "gateway", "mitmdump", "nginx"),
    fan1000_reps=1,
    fan1000_seconds=6,
    fan1000_systems=("direct", "gateway", "mitmdump"),
    navigations=3,
    startup_reps=1,
    soak_seconds=40,
    profile_seconds=3,
    idle_seconds=30,
    idle_settle=15,
    startup_full_reps=1,
    storm_seconds=24,
)


# Scenarios that start their own gateways (bench/alwayson.py).
ALWAYS_ON = {"idle", "startup-full", "deadrx", "storm"}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- set-up -----------------------------------------------------------------------------


def ensure_packages(notes: list[str]) -> None:
    """Install the Debian tools the scenarios drive (``DEBIAN_PACKAGES``) when missing
    (root only)."""
    missing = [pkg for tool, pkg in DEBIAN_PACKAGES.items() if systems.tool_path(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        notes.append(f"not installed and cannot install (not root): {', '.join(missing)}")
        return
    log(f"installing {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-qq", *missing]
    if subprocess.run(command, env=env, capture_output=True, timeout=600).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            notes.append(f"apt-get install {' '.join(missing)} failed: {done.stderr[-300:]}")


def versions() -> str:
    parts = [f"Python {platform.python_version()}"]
    with contextlib.suppress(Exception):
        import mitmproxy.version

        parts.append(f"mitmproxy {mitmproxy.version.VERSION}")
    for _name, argv in (
        ("nginx", ["nginx", "-v"]),
        ("wrk", ["wrk", "-v"]),
        ("chromium", [browser.CHROMIUM, "--version"]),
    ):
        with contextlib.suppress(Exception):
            done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            text = (done.stdout + done.stderr).strip().splitlines()[0]
            parts.append(text.replace("nginx version: ", "").strip())
    return ", ".join(parts)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {total:.0f} GiB, Linux {platform.release()}"


class LoadMonitor:
    """CPU that processes outside this run used meanwhile (cores), sampled every 2 s.

    The benchmark shares its 2 cores with whatever else the machine does; this says how
    much that was, so a noisy result can be recognised as such.
    """

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _busy() -> float:
        times = psutil.cpu_times()
        return times.user + times.nice + times.system + times.irq + times.softirq

    @staticmethod
    def _ours() -> float:
        """CPU seconds of this run so far: the runner and every descendant, living or
        reaped (a reaped child's time moves into its parent's ``children_*``)."""
        total = 0.0
        me = psutil.Process()
        for member in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = member.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
        return total

    def _run(self) -> None:
        ours, busy = self._ours(), self._busy()
        while not self._stop.wait(2.0):
            ours_now, busy_now = self._ours(), self._busy()
            self.samples.append(max(0.0, (busy_now - busy - (ours_now - ours)) / 2.0))
            ours, busy = ours_now, busy_now

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join(5)
        values = sorted(self.samples) or [math.nan]
        return {
            "median": values[len(values) // 2],
            "p90": values[int(len(values) * 0.9)],
            "max": values[-1],
        }


class Sampler:
    """RSS of some processes, sampled in a thread every ``interval`` seconds."""

    def __init__(self, pids: list[int], interval: float = 0.5) -> None:
        self.pids = pids
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(
                (time.monotonic() - self._started, procs.rss_bytes(self.pids) / 2**20)
            )
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def peak(self) -> float:
        return max((m for _, m in self.samples), default=math.nan)


# -- scenarios --------------------------------------------------------------------------


class Runner:
    def __init__(self, plan: Plan, workdir: Path, results: dict[str, Any]) -> None:
        self.plan = plan
        self.workdir = workdir
        self.procs = Procs(workdir / "logs")
        self.results = results
        self.notes: list[str] = results["notes"]
        self.systems: dict[str, System] = {}
        self.only_systems: set[str] = set()

    def attempt(self, what: str, action: Callable[[], Any]) -> Any:
        """Run one step; a failure becomes a note, not the end of the run."""
        try:
            return action()
        except Exception as error:
            log(f"{what} failed: {error}")
            self.notes.append(
                f"{what}: not measured ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:200] if str(error) else ''})"
            )
            return None

    def start_systems(self) -> None:
        starters: list[tuple[str, Callable[[], System]]] = [
            ("direct", lambda: systems.start_direct(self.procs)),
            ("gateway", lambda: systems.start_gateway(self.procs, self.workdir, "gateway")),
            (
                "gateway-noauth",
                lambda: systems.start_gateway(
                    self.procs, self.workdir, "gateway-noauth", auth=False
                ),
            ),
            ("mitmdump", lambda: systems.start_mitmdump(self.procs, self.workdir)),
            ("lean", lambda: systems.start_lean(self.procs, self.workdir)),
            *[
                (key, lambda k=key: systems.start_lean(self.procs, self.workdir, k))
                for key in self.plan.diagnostics
                if key.startswith("lean")
            ],
            *[
                (
                    key,
                    lambda k=key: systems.start_gateway(
                        self.procs, self.workdir, k, module="bench.unchained_gateway"
                    ),
                )
                for key in self.plan.diagnostics
                if key == "gateway-unchained"
            ],
            ("nginx", lambda: systems.start_nginx(self.procs, self.workdir, auth=False)),
            ("nginx-auth", lambda: systems.start_nginx(self.procs, self.workdir, auth=True)),
        ]
        if systems.tls_available():
            starters.insert(
                2,
                (
                    "gateway-tls",
                    lambda: systems.start_gateway(
                        self.procs, self.workdir, "gateway-tls", tls=True
                    ),
                ),
            )
        else:
            self.notes.append("gateway-tls: not measured - this version has no [tls] section")
        if self.only_systems:
            starters = [(k, s) for k, s in starters if k in self.only_systems]
        for key, start in starters:
            log(f"starting {key}")
            system = self.attempt(f"starting {key}", start)
            if system is not None:
                self.systems[key] = system
                self.results["labels"][key] = system.label

    def memory(self, phase: str) -> None:
        time.sleep(3)
        for key, system in self.systems.items():
            entry = self.results["memory"].setdefault(key, {})
            entry[phase] = procs.rss_bytes(system.pids) / 2**20

    # HTTP
    def http(self) -> None:
        plan = self.plan
        data: dict[str, dict[str, list[dict[str, Any]]]] = self.results["http"]
        ratios = self.results["ratios"]
        order = list(self.systems)
        for key in order:  # warm-up: connections, caches, JIT-free but lazy imports
            system = self.systems[key]
            self.attempt(
                f"warm-up {key}",
                lambda s=system: httpload.run_wrk(
                    s.url("/api/v1/public/cemm"), s.headers, connections=4, seconds=1
                ),
            )
        for rep in range(plan.http_reps):
            per: dict[tuple[str, str], dict[str, Any]] = {}
            # Rotate the order so no system is always first after a pause.
            rotated = order[rep % len(order) :] + order[: rep % len(order)]
            for conc in (1, 16):
                for key in rotated:
                    system = self.systems[key]
                    log(f"http rep {rep + 1}/{plan.http_reps} c={conc} {key}")
                    before = procs.cpu_seconds(system.pids)

                    def measure(s: System = system, c: int = conc) -> dict[str, Any]:
                        return httpload.run_wrk(
                            s.url("/api/v1/public/cemm"),
                            s.headers,
                            connections=c,
                            seconds=plan.http_seconds,
                        )

                    result = self.attempt(f"http c={conc} {key}", measure)
                    if result is None:
                        continue
                    cpu = procs.cpu_seconds(system.pids) - before
                    if result.get("requests"):
                        result["cpu_ms_per_req"] = cpu * 1000 / result["requests"]
                    data.setdefault(key, {}).setdefault(f"c{conc}", []).append(result)
                    per[(key, f"c{conc}")] = result

            def ratio(
                name: str,
                a: tuple[str, str],
                b: tuple[str, str],
                field: str,
                difference: bool = False,
                per: dict[Any, Any] = per,
            ) -> None:
                if a in per and b in per:
                    value = (
                        (per[a][field] - per[b][field])
                        if difference
                        else (per[a][field] / per[b][field])
                    )
                    ratios.setdefault(name, []).append(value)

            ratio("gw_vs_mitmdump_c16", ("gateway", "c16"), ("mitmdump", "c16"), "rps")
            ratio("gw_vs_mitmdump_c1", ("gateway", "c1"), ("mitmdump", "c1"), "rps")
            ratio("gw_vs_lean_c16", ("gateway", "c16"), ("lean", "c16"), "rps")
            ratio("lean_vs_mitmdump_c16", ("lean", "c16"), ("mitmdump", "c16"), "rps")
            ratio("gw_added_p50_c1_ms", ("gateway", "c1"), ("direct", "c1"), "p50_ms", True)
            ratio("mitm_added_p50_c1_ms", ("mitmdump", "c1"), ("direct", "c1"), "p50_ms", True)
            ratio("auth_on_off_c16", ("gateway", "c16"), ("gateway-noauth", "c16"), "rps")
            ratio("auth_on_off_c1", ("gateway", "c1"), ("gateway-noauth", "c1"), "rps")
            ratio("tls_vs_plain_c16", ("gateway-tls", "c16"), ("gateway", "c16"), "rps")
            ratio("gw_vs_nginx_c16", ("gateway", "c16"), ("nginx", "c16"), "rps")
            ratio("noop10_vs_lean_c16", ("lean-noop10", "c16"), ("lean", "c16"), "rps")
            ratio("stream_vs_lean_c16", ("lean-stream", "c16"), ("lean", "c16"), "rps")
            ratio("gw_vs_unchained_c16", ("gateway", "c16"), ("gateway-unchained", "c16"), "rps")

    # WebSocket round trip
    def ws_rtt(self) -> None:
        plan = self.plan
        keys = [
            k
            for k in ("direct", "gateway", "mitmdump", "lean", "nginx", "nginx-auth")
            if k in self.systems
        ]
        for rep in range(plan.rtt_reps):
            per: dict[str, dict[str, Any]] = {}
            for key in keys:
                log(f"ws rtt rep {rep + 1}/{plan.rtt_reps} {key}")
                result = self.attempt(
                    f"ws round trip {key}",
                    lambda k=key: self._wsload(
                        k, ["rtt", "--count", str(plan.rtt_count)], timeout=300
                    ),
                )
                if result is not None:
                    self.results["ws_rtt"].setdefault(key, []).append(result)
                    per[key] = result
            if "gateway" in per and "direct" in per:
                self.results["ratios"].setdefault("ws_rtt_gw_vs_direct", []).append(
                    per["gateway"]["p50_ms"] / per["direct"]["p50_ms"]
                )

    def _wsload(self, key: str, arguments: list[str], timeout: float) -> dict[str, Any]:
        system = self.systems[key]
        url = system.ws_url()
        assert url is not None
        argv = [
            PYTHON,
            "-m",
            "bench.wsload",
            arguments[0],
            "--url",
            url,
            "--origin",
            f"{system.scheme}://127.0.0.1:{system.http_port}",
        ]
        for name, value in system.headers.items():
            argv += ["--header", f"{name}: {value}"]
        argv += arguments[1:]
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        if done.returncode != 0:
            raise RuntimeError(
                done.stderr.strip().splitlines()[-1] if done.stderr else f"exit {done.returncode}"
            )
        return json.loads(done.stdout)

    # WebSocket fan-out
    def fanout(self, n: int, reps: int, seconds: float, keys: tuple[str, ...]) -> None:
        keys_here = [k for k in keys if k in self.systems]
        skipped = [k for k in keys if k not in self.systems]
        if skipped:
            self.notes.append(f"{n:,} sockets: {', '.join(skipped)} not running, not measured")
        data = self.results["fanout"].setdefault(str(n), {})
        for rep in range(reps):
            per: dict[str, dict[str, Any]] = {}
            for key in keys_here:
                log(f"{n} sockets rep {rep + 1}/{reps} {key} ({seconds:.0f} s)")
                system = self.systems[key]

                def measure(k: str = key, s: System = system) -> dict[str, Any]:
                    with Sampler(s.pids) as sampler:
                        result = self._wsload(
                            k,
                            ["fanout", "--n", str(n), "--duration", str(seconds)],
                            timeout=seconds + 400,
                        )
                    result["rss_peak_mb"] = sampler.peak
                    result["duration"] = seconds
                    return result

                result = self.attempt(f"{n} sockets {key}", measure)
                if result is not None:
                    data.setdefault(key, []).append(result)
                    per[key] = result
                time.sleep(2)  # let closed sockets leave TIME_WAIT bookkeeping behind
            if "gateway" in per and "mitmdump" in per and per["mitmdump"]["p99_ms"] > 0:
                self.results["ratios"].setdefault(f"fan{n}_p99", []).append(
                    per["gateway"]["p99_ms"] / per["mitmdump"]["p99_ms"]
                )

    # Browser
    def browser(self) -> None:
        targets = {}
        for key in ("direct", "gateway"):
            if key in self.systems:
                system = self.systems[key]
                targets[key] = (system.url("/"), system.cookie)
        if not Path(browser.CHROMIUM).exists():
            self.notes.append("first live reading: not measured - /usr/bin/chromium missing")
            return
        log(f"chromium: {self.plan.navigations} navigations each to {', '.join(targets)}")
        result = self.attempt(
            "first live reading (chromium)",
            lambda: browser.first_live_reading(targets, self.plan.navigations),
        )
        if result:
            result, marks = result
            self.results["browser"] = result
            self.results["browser_marks"] = marks
            if result.get("gateway") and result.get("direct"):
                self.results["ratios"]["browser"] = [
                    report.median(result["gateway"]) / report.median(result["direct"])
                ]

    # Start-up
    def startup(self) -> None:
        reps = self.plan.startup_reps
        out: dict[str, list[float]] = self.results["startup"]
        direct = self.systems.get("direct")
        if direct is None:
            return
        sim = direct.sim
        for rep in range(reps):
            log(f"start-up rep {rep + 1}/{reps}")
            port = procs.free_port()
            argv = [
                PYTHON,
                "-m",
                "bench.simulator",
                "--http-port",
                str(port),
                "--ws-port",
                str(procs.free_port()),
            ]
            self._time_start(out, "direct", f"startup-sim-{rep}", argv, port, {})
            port, ws = procs.free_port(), procs.free_port()
            self._time_start(
                out,
                "mitmdump",
                f"startup-mitmdump-{rep}",
                systems.mitmdump_argv(self.workdir, sim, port, ws),
                port,
                {},
            )
            if systems.tool_path("nginx"):
                port, ws = procs.free_port(), procs.free_port()
                self.attempt(
                    "nginx start-up",
                    lambda p=port, w=ws, r=rep: self._time_start(
                        out,
                        "nginx",
                        f"startup-nginx-{r}",
                        systems.nginx_argv(
                            self.workdir, f"startup-nginx-{r}", sim, p, w, auth=False
                        )[0],
                        p,
                        {},
                    ),
                )
        self.attempt("gateway start-up", lambda: self._gateway_startup(sim, reps, out))

    def _time_start(
        self,
        out: dict[str, list[float]],
        key: str,
        name: str,
        argv: list[str],
        port: int,
        headers: dict[str, str],
        env: dict[str, str] | None = None,
    ) -> None:
        seconds, process = systems.time_to_serving(self.procs, name, argv, port, headers, env=env)
        out.setdefault(key, []).append(seconds)
        self.procs.stop(process)

    def _gateway_startup(
        self, sim: systems.Simulator, reps: int, out: dict[str, list[float]]
    ) -> None:
        env = systems.gateway_env()
        cookie_headers: dict[str, str] = {}
        keep: Path | None = None
        for rep in range(reps):
            http_port, ws_port, admin = (procs.free_port(), procs.free_port(), procs.free_port())
            config = systems.gateway_config(
                self.workdir / f"startup-gw-{rep}", sim, http_port, ws_port, admin
            )
            argv = [PYTHON, "-m", "gateway", "run", "--config", str(config)]
            started = time.monotonic()
            process = self.procs.start(f"startup-gw-first-{rep}", argv, env=env)
            procs.wait_until(
                lambda p=http_port: (
                    systems.http_get(p, "/api/v1/public/cemm", timeout=1.0)[0] in (200, 401)
                ),
                60,
                0.005,
            )
            out.setdefault("gateway-first", []).append(time.monotonic() - started)
            if rep == 0:
                name, value = systems.login(http_port)
                cookie_headers = {"Cookie": f"{name}={value}"}
                keep = config.parent
            self.procs.stop(process)
        assert keep is not None
        for rep in range(reps):
            # Restart on the data of the first start-up (where the session lives), on new
            # ports so a socket in TIME_WAIT never delays it.
            http_port, ws_port, admin = (procs.free_port(), procs.free_port(), procs.free_port())
            config = systems.gateway_config(keep, sim, http_port, ws_port, admin)
            argv = [PYTHON, "-m", "gateway", "run", "--config", str(config)]
            self._time_start(
                out, "gateway", f"startup-gw-{rep}", argv, http_port, cookie_headers, env=env
            )

    # Profiles
    def profiles(self) -> None:
        if profile.py_spy() is None:
            self.notes.append("profiles: py-spy is not installed (pip install py-spy)")
            return
        for key in ("gateway", "mitmdump"):
            system = self.systems.get(key)
            if system is None or system.proxy is None:
                continue
            log(f"profiling {key} under wrk c=16")
            raw = self.workdir / f"profile-{key}.raw"
            seconds = self.plan.profile_seconds
            load = subprocess.Popen(
                [
                    "wrk",
                    "-t1",
                    "-c16",
                    f"-d{int(seconds + 3)}s",
                    *[a for n, v in system.headers.items() for a in ("-H", f"{n}: {v}")],
                    system.url("/api/v1/public/cemm"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                time.sleep(1)
                recorded = profile.record(system.proxy.pid, seconds, raw)
            finally:
                load.wait(seconds + 30)
            if recorded:
                summary = profile.summarize(recorded)
                summary["scenario"] = "wrk c=16 on GET /api/v1/public/cemm"
                self.results["profile"][key] = summary

    # Soak
    def _fresh(self, key: str) -> System | None:
        """``key`` again in a new process (and with a new simulator). A process that carried
        the earlier scenarios - 1,000 sockets at once - starts a soak at its high-water
        mark, where steady growth would vanish into heap it freed: the soak measures
        processes that have only just started."""
        old = self.systems.get(key)
        if old is None:
            return None
        for process in (old.proxy, old.sim.process):
            if process is not None:
                self.procs.stop(process)
        start = {
            "gateway": lambda: systems.start_gateway(
                self.procs, self.workdir, "gateway", directory="gateway-soak"
            ),
            "mitmdump": lambda: systems.start_mitmdump(self.procs, self.workdir),
        }[key]
        fresh = self.attempt(f"restarting {key} for the soak", start)
        if fresh is None:
            del self.systems[key]
        else:
            self.systems[key] = fresh
        return fresh

    def soak(self) -> None:
        seconds = self.plan.soak_seconds
        targets = []
        for key in ("gateway", "mitmdump"):
            system = self._fresh(key)
            if system is None:
                continue
            target = {
                "name": key,
                "base": system.url(""),
                "ws": system.ws_url(),
                "headers": system.headers,
                "origin": f"{system.scheme}://127.0.0.1:{system.http_port}",
            }
            if key == "gateway":
                target |= {"user": systems.USER, "password": systems.PASSWORD}
            targets.append(target)
        if not targets:
            return
        log(f"soak {seconds:.0f} s on {', '.join(t['name'] for t in targets)}")
        argv = [PYTHON, "-m", "bench.soak", "--duration", str(seconds)]
        for t in targets:
            argv += ["--target", json.dumps(t)]
        samplers = {t["name"]: Sampler(self.systems[t["name"]].pids, interval=5.0) for t in targets}
        for sampler in samplers.values():
            sampler.__enter__()
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=seconds + 300,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        finally:
            for sampler in samplers.values():
                sampler.__exit__()
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip()[-500:])
        warmup = min(120.0, seconds / 3)
        soak = self.results["soak"]
        soak.update(duration_s=seconds, warmup_s=warmup, load=json.loads(done.stdout))
        for key, sampler in samplers.items():
            samples = sampler.samples
            soak["samples"][key] = samples
            soak["slope_mb_per_min"][key] = slope([(t, m) for t, m in samples if t >= warmup])


def slope(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope in MB per minute."""
    if len(samples) < 3:
        return math.nan
    xs = [t / 60 for t, _ in samples]
    ys = [m for _, m in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


# -- main -------------------------------------------------------------------------------


def render(results: dict[str, Any], out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    targets = report.evaluate_targets(results)
    results["targets"] = targets
    problem = report.plot(results, out / "results.png")
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (out / "results.md").write_text(
        report.markdown(results, targets, None if problem else "results.png")
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (CI)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="where results.md, results.json and results.png go",
    )
    parser.add_argument(
        "--no-netns", action="store_true", help="stay on the host's loopback even as root"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated scenarios (debugging): "
        "startup,http,rtt,fan100,fan1000,browser,profile,soak,"
        "idle,startup-full,deadrx,storm",
    )
    parser.add_argument("--systems", default="", help="comma-separated systems (debugging)")
    parser.add_argument(
        "--render",
        type=Path,
        help="only re-render results.md/.png from this results.json (after changing the report)",
    )
    args = parser.parse_args()
    if args.render:
        return render(json.loads(args.render.read_text()), args.out)
    plan = QUICK if args.quick else FULL
    only = set(filter(None, args.only.split(",")))
    command = "python bench/run.py" + (" --quick" if args.quick else "")

    notes: list[str] = []
    ensure_packages(notes)
    where = "the host's loopback (--no-netns)" if args.no_netns else procs.enter_own_netns()
    # Inherited by every system started: 1,000 sockets need ~2,000 fds per proxy.
    fds = raise_open_file_limit()
    results: dict[str, Any] = {
        "meta": {
            "command": command,
            "mode": "quick" if args.quick else "full",
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "where": where,
            "machine": machine(),
            "versions": versions(),
            "plan": plan.__dict__,
            "fd_limit": fds,
        },
        "notes": notes,
        "labels": {},
        "http": {},
        "ratios": {},
        "ws_rtt": {},
        "fanout": {},
        "browser": {},
        "startup": {},
        "memory": {},
        "profile": {},
        "soak": {"samples": {}, "slope_mb_per_min": {}},
    }
    notes.append(
        "The simulator runs with TCP_NODELAY on its listening sockets "
        "(`bench/simulator.py`): without it every kept-alive response waits ~40 ms "
        "for a delayed ACK, for every system alike."
    )
    workdir = Path(tempfile.mkdtemp(prefix="cemm-bench-"))

    def on_signal(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    runner = Runner(plan, workdir, results)
    runner.only_systems = set(filter(None, args.systems.split(",")))
    if only and only <= ALWAYS_ON and not runner.only_systems:
        # These scenarios start gateways of their own: the common systems would idle.
        runner.only_systems = {"-"}
    started = time.monotonic()
    monitor = LoadMonitor()
    monitor.start()

    def wanted(name: str) -> bool:
        return not only or name in only

    scenarios: list[tuple[str, Callable[[], Any]]] = [
        ("startup", runner.startup),
        ("http", runner.http),
        ("rtt", runner.ws_rtt),
        (
            "fan100",
            lambda: runner.fanout(100, plan.fan100_reps, plan.fan100_seconds, plan.fan100_systems),
        ),
        (
            "fan1000",
            lambda: runner.fanout(
                1000, plan.fan1000_reps, plan.fan1000_seconds, plan.fan1000_systems
            ),
        ),
        ("browser", runner.browser),
        ("memory", lambda: runner.memory("after_load_mb")),
        ("profile", runner.profiles),
        ("soak", runner.soak),
        ("idle", lambda: alwayson.idle(runner, plan.idle_seconds, plan.idle_settle)),
        ("startup-full", lambda: alwayson.startup_full(runner, plan.startup_full_reps)),
        ("deadrx", lambda: alwayson.dead_receiver(runner, plan.http_reps, plan.http_seconds)),
        ("storm", lambda: alwayson.storm(runner, plan.storm_seconds)),
    ]
    partial = args.out / "results.partial.json"
    try:
        runner.start_systems()
        if runner.systems:
            runner.memory("after_start_mb")
        chosen = [(n, s) for n, s in scenarios if (n == "memory" and runner.systems) or wanted(n)]
        durations: dict[str, float] = results["meta"].setdefault("scenario_seconds", {})
        for index, (name, scenario) in enumerate(chosen, 1):
            log(
                f"scenario {index}/{len(chosen)}: {name} "
                f"(elapsed {(time.monotonic() - started) / 60:.1f} min)"
            )
            began = time.monotonic()
            runner.attempt(name, scenario)
            durations[name] = time.monotonic() - began
            # What is done so far survives a crash or an interruption.
            args.out.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(results, indent=1, default=str))
    finally:
        runner.procs.close()
        results["meta"]["seconds"] = time.monotonic() - started
        foreign = results["meta"]["foreign_cpu_cores"] = monitor.stop()
        if foreign["median"] > 0.15 or foreign["p90"] > 0.4:
            notes.append(
                f"Other processes on this machine used {foreign['median']:.2f} cores "
                f"(median; p90 {foreign['p90']:.2f}, max {foreign['max']:.2f}) of the 2 "
                "during the run: absolute numbers are noisy; ratios less so (measured back "
                "to back)."
            )
        args.out.mkdir(parents=True, exist_ok=True)
        targets = report.evaluate_targets(results)
        results["targets"] = targets
        problem = report.plot(results, args.out / "results.png")
        if problem:
            notes.append(problem)
        (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
        (args.out / "results.md").write_text(
            report.markdown(results, targets, None if problem else "results.png")
        )
        partial.unlink(missing_ok=True)
        if args.keep:
            log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        log(f"done in {time.monotonic() - started:.0f} s: {args.out / 'results.md'}")
        for t in targets:
            log(f"{t['status']:7} {t['name']}: {t['value']} ({t['limit']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
