"""What an always-on box costs: the scenarios ``idle``, ``startup-full``, ``deadrx`` and
``storm`` (bench/README.md).

- ``idle``: gateways started side by side and left alone - nothing configured beyond the
  minimum, each feature alone (WireGuard, notifications, ACME, automatic backups), and
  everything at once - each in a network namespace of its own (:mod:`bench.netns`). After
  a settle period their CPU (children included, reaped ones too), voluntary context
  switches and RSS are read over one common window.
- ``startup-full``: spawn to the first proxied 200 with an existing session, everything
  configured, restarted on the same data.
- ``deadrx``: wrk c=16 through a gateway whose notifications go to a receiver that accepts
  and never answers, against the same gateway with notifications off, back to back per
  repetition, while wrong logins make notifications fire in both.
- ``storm``: 200 concurrent wrong-password logins against one account while a logged-in
  person's requests run at 20/s; the gateway's RSS and the person's latencies meanwhile.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import itertools
import json
import math
import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench import httpload, procs, systems
from bench.netns import DeadReceiver, Netns, Receiver, wait_for
from bench.procs import PYTHON, Procs

FEATURES = ("wireguard", "notify", "acme", "backup")
IDLE_CONFIGS: dict[str, tuple[str, ...]] = {
    "gateway-idle": (),
    **{f"gateway-idle+{feature}": (feature,) for feature in FEATURES},
    "gateway-idle-full": FEATURES,
}
LABELS = {
    "gateway-idle": "nothing configured",
    "gateway-idle+wireguard": "+ WireGuard (no peer)",
    "gateway-idle+notify": "+ notifications (Apprise json:// to a live receiver)",
    "gateway-idle+acme": "+ ACME (Pebble; with [tls])",
    "gateway-idle+backup": "+ automatic backups (daily)",
    "gateway-idle-full": "everything configured",
}
DOMAIN = "cemm.bench.test"
PERSON_RATE = 20.0  # the logged-in person's requests per second during the storm
STORM_LOGINS = 200
_INTERFACES = itertools.count()


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


class RunnerLike(Protocol):
    procs: Procs
    workdir: Path
    results: dict[str, Any]
    notes: list[str]

    def attempt(self, what: str, action: Callable[[], Any]) -> Any: ...


@dataclass
class Box:
    """One gateway of these scenarios, in a namespace of its own (or the runner's)."""

    key: str
    features: tuple[str, ...]
    directory: Path
    ns: Netns | None
    sim: systems.Simulator | None = None
    process: Any = None
    http_port: int = 0
    admin_port: int = 0
    pebble: Any = None
    receiver: Receiver | DeadReceiver | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def tls(self) -> bool:
        return "acme" in self.features

    @property
    def pids(self) -> list[int]:
        return [self.process.pid] if self.process is not None else []

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        if self.ns is None:
            yield
        else:
            with self.ns.inside():
                yield

    def close(self) -> None:
        for close in reversed(self.closers):
            with contextlib.suppress(Exception):
                close()


def _feature_toml(box: Box, feature: str) -> str:
    if feature == "wireguard":
        # wireguard-go's control socket (/var/run/wireguard/<name>.sock) is shared by every
        # namespace: a name of this run's own, and one for each gateway.
        interface = f"wgb{os.getpid() % 100000}-{next(_INTERFACES)}"
        return (
            f'[wireguard]\nenabled = true\ninterface = "{interface}"\n'
            'endpoint = "vpn.bench.test:51820"\n'
        )
    if feature == "notify":
        assert box.receiver is not None
        return f'[notify]\nurls = ["json://127.0.0.1:{box.receiver.port}/"]\n'
    if feature == "acme":
        assert box.pebble is not None
        return (
            f'[acme]\nenabled = true\ndomains = ["{DOMAIN}"]\n'
            f'directory_url = "{box.pebble.directory_url}"\n'
            f'ca_bundle = "{box.pebble.ca_bundle}"\n'
        )
    if feature == "backup":
        return _backup_toml(box.directory)
    raise ValueError(feature)


def _backup_toml(directory: Path) -> str:
    """Daily backups. The directory holds a backup taken a minute ago (a stand-in file: the
    gateway reads only its name's time), as on a box that has been running: the idle window
    measures the schedule, not the first backup a new box takes a minute after start."""
    from gateway import backup

    secret = directory / "backup-passphrase"
    secret.write_text("bench backup passphrase\n")
    secret.chmod(0o600)
    target = directory / "backups"
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    (target / backup.automatic_name(time.time() - 60)).write_bytes(b"stand-in")
    return f'[backup]\npassphrase_file = "{secret}"\ninterval = 86400\ndirectory = "{target}"\n'


def prepare(
    runner: RunnerLike,
    key: str,
    features: tuple[str, ...],
    *,
    own_ns: bool = True,
    receiver: str = "live",
) -> Box:
    """Namespace, simulator, Pebble, receiver and configuration; the gateway is not
    started yet (:func:`launch`)."""
    box = Box(key, features, runner.workdir / key, Netns(runner.procs, key) if own_ns else None)
    box.directory.mkdir(parents=True, exist_ok=True)
    if box.ns is not None:
        box.closers.append(box.ns.close)
    with box.inside():
        box.http_port = procs.free_port()
        ws_port, box.admin_port = procs.free_port(), procs.free_port()
        box.sim = systems.start_simulator(runner.procs, key, ws_port)
        if "notify" in features:
            box.receiver = Receiver() if receiver == "live" else DeadReceiver()
            box.closers.append(box.receiver.close)
        if "acme" in features:
            from tests.support.pebble import Pebble

            box.pebble = Pebble(box.directory / "pebble", http_port=box.http_port)
            box.closers.append(box.pebble.close)
        extra = "".join(_feature_toml(box, f) for f in features)
        systems.gateway_config(
            box.directory,
            box.sim,
            box.http_port,
            ws_port,
            box.admin_port,
            tls=box.tls,
            extra=extra,
        )
    return box


def launch(runner: RunnerLike, box: Box, name: str | None = None) -> float:
    """Start the gateway (inside its namespace); the moment it was spawned."""
    argv = [PYTHON, "-m", "gateway", "run", "--config", str(box.directory / "gateway.toml")]
    with box.inside():
        started = time.monotonic()
        box.process = runner.procs.start(name or box.key, argv, env=systems.gateway_env())
    return started


def wait_ready(runner: RunnerLike, box: Box, timeout: float = 90) -> Box:
    """Until the admin port's /healthz answers (and with ACME, until Pebble's certificate
    is in place: the order belongs to the first start, not to idling)."""

    def healthy() -> bool:
        if box.process.poll() is not None:
            text = (runner.procs.logdir / f"{box.key}.log").read_text(errors="replace")
            raise RuntimeError(f"{box.key} exited with {box.process.returncode}: {text[-300:]}")
        with box.inside():
            return systems.http_get(box.admin_port, "/healthz", tls=box.tls)[0] == 200

    wait_for(healthy, timeout, f"{box.key}: /healthz")
    if "acme" in box.features:
        from gateway.acme.storage import AcmeStorage

        storage = AcmeStorage(box.directory / "data")
        wait_for(storage.issued, timeout, f"{box.key}: the ACME certificate from Pebble")
    return box


def session(box: Box) -> dict[str, str]:
    with box.inside():
        name, value = systems.login(box.http_port, tls=box.tls)
    return {"Cookie": f"{name}={value}"}


# -- idle -------------------------------------------------------------------------------


def idle(runner: RunnerLike, seconds: float, settle: float) -> None:
    """Every configuration of :data:`IDLE_CONFIGS` at once, left alone."""
    out: dict[str, Any] = runner.results.setdefault("idle", {})
    out.update(window_s=seconds, settle_s=settle, systems={})
    boxes: list[Box] = []
    try:
        for key, features in IDLE_CONFIGS.items():
            box = runner.attempt(
                f"preparing {key}", functools.partial(prepare, runner, key, features)
            )
            if box is not None:
                boxes.append(box)
                runner.results["labels"][key] = LABELS[key]
        for box in boxes:
            launch(runner, box)
        ready = [
            box
            for box in boxes
            if runner.attempt(f"starting {box.key}", functools.partial(wait_ready, runner, box))
        ]
        log(f"idle: {len(ready)} gateways up; settling {settle:.0f} s")
        time.sleep(settle)
        before = {b.key: (procs.cpu_seconds_all(b.pids), procs.wakeups(b.pids)) for b in ready}
        threads_before = {b.key: procs.wakeups_by_thread(b.pids) for b in ready}
        started = time.monotonic()
        step = max(10.0, seconds / 10)
        while (left := seconds - (time.monotonic() - started)) > 0:
            log(f"idle: {seconds - left:.0f}/{seconds:.0f} s of the window")
            time.sleep(min(step, left))
        elapsed = time.monotonic() - started
        for box in ready:
            if box.process.poll() is not None:
                runner.notes.append(f"idle: {box.key} exited during the window")
                continue
            cpu0, wake0 = before[box.key]
            cpu = procs.cpu_seconds_all(box.pids) - cpu0
            out["systems"][box.key] = {
                "features": list(box.features),
                "cpu_percent": 100 * cpu / elapsed,
                "cpu_seconds": cpu,
                "wakeups_per_s": (procs.wakeups(box.pids) - wake0) / elapsed,
                "rss_mb": procs.rss_bytes(box.pids) / 2**20,
                "processes": len(procs._family(box.pids)),
                "wakeups_by_thread": _by_thread(box, threads_before[box.key], elapsed),
            }
        out["window_measured_s"] = elapsed
    finally:
        for box in boxes:
            if box.process is not None:
                runner.procs.stop(box.process)
            box.close()


def _by_thread(box: Box, before: dict[int, int], elapsed: float) -> dict[str, float]:
    """Wakeups per second by thread name (threads of one name summed), busiest first."""
    from bench.profile import py_spy

    now = procs.wakeups_by_thread(box.pids)
    names = procs.thread_names(box.process.pid, py_spy())
    per: dict[str, float] = {}
    for tid, count in now.items():
        name = names.get(tid, str(tid))
        per[name] = per.get(name, 0.0) + (count - before.get(tid, 0)) / elapsed
    ranked = sorted(per.items(), key=lambda item: -item[1])
    return {name: round(rate, 2) for name, rate in ranked if rate > 0}


# -- start-up with everything configured ------------------------------------------------


def _serving(box: Box, headers: dict[str, str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if box.process.poll() is not None:
            raise RuntimeError(f"{box.key} exited with {box.process.returncode}")
        with contextlib.suppress(Exception), box.inside():
            if systems.http_get(box.http_port, "/api/v1/public/cemm", headers, tls=box.tls,
                                timeout=1.0)[0] == 200:  # fmt: skip
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{box.key} did not serve within {timeout:.0f} s")
        time.sleep(0.005)


def startup_full(runner: RunnerLike, reps: int) -> None:
    """Restarts of a gateway with everything configured, on its own data (session, ACME
    certificate, WireGuard keys in place), to the first proxied 200 with the session."""
    out: list[float] = runner.results["startup"].setdefault("gateway-full", [])
    runner.results["labels"]["gateway-full"] = "gateway, everything configured (restart)"
    box = prepare(runner, "gateway-full", FEATURES)
    try:
        launch(runner, box, "gateway-full-first")
        wait_ready(runner, box)
        headers = session(box)
        runner.procs.stop(box.process)
        for rep in range(reps):
            log(f"start-up (everything configured) rep {rep + 1}/{reps}")
            started = launch(runner, box, f"gateway-full-{rep}")
            _serving(box, headers)
            out.append(time.monotonic() - started)
            runner.procs.stop(box.process)
    finally:
        if box.process is not None:
            runner.procs.stop(box.process)
        box.close()


# -- a dead notification receiver ------------------------------------------------------


class WrongLogins:
    """Wrong logins, one at a time, for a new account name every ``per_name`` guesses:
    each name's fourth failure is a ``login.failure_burst`` notice, its tenth a ``ban``.
    Names are ``{prefix}{n}``: a new prefix starts the brute-force gate's answers afresh
    (three answered at once and hashed, then delays doubling from 0.5 s)."""

    def __init__(
        self, box: Box, prefix: str = "ghost", per_name: int = 10, pause: float = 0.25
    ) -> None:
        self.box = box
        self.prefix = prefix
        self.per_name = per_name
        self.pause = pause
        self.sent = 0
        self.statuses: Counter[int] = Counter()
        self.answered: list[tuple[float, float]] = []
        """(sent, answered) of each login, on the monotonic clock."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._names = 0

    def _run(self) -> None:
        while not self._stop.is_set():
            name = f"{self.prefix}{self._names // self.per_name}"
            self._names += 1
            sent = time.monotonic()
            status = _post_login(self.box.http_port, name, "wrong-password")
            self.answered.append((sent, time.monotonic()))
            self.statuses[status] += 1
            self.sent += 1
            self._stop.wait(self.pause)

    def __enter__(self) -> WrongLogins:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)


def _post_login(port: int, user: str, password: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = json.dumps({"username": user, "password": password})
        connection.request(
            "POST", "/.gateway/api/login", body, headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        connection.close()


def dead_receiver(runner: RunnerLike, reps: int, seconds: float) -> None:
    out: dict[str, Any] = runner.results.setdefault("deadrx", {})
    out.update(runs={"gateway-notify-dead": [], "gateway-notify-off": []}, ratios=[])
    boxes = {
        "gateway-notify-dead": prepare(
            runner, "gateway-notify-dead", ("notify",), own_ns=False, receiver="dead"
        ),
        "gateway-notify-off": prepare(runner, "gateway-notify-off", (), own_ns=False),
    }
    runner.results["labels"]["gateway-notify-dead"] = "notifications to a dead receiver"
    runner.results["labels"]["gateway-notify-off"] = "notifications off"
    try:
        headers = {}
        for box in boxes.values():
            launch(runner, box)
        for key, box in boxes.items():
            wait_ready(runner, box)
            headers[key] = session(box)
            httpload.run_wrk(_url(box), headers[key], connections=4, seconds=1)  # warm-up
        dead = boxes["gateway-notify-dead"].receiver
        assert isinstance(dead, DeadReceiver)
        order = list(boxes)
        statuses: dict[str, Counter[int]] = {key: Counter() for key in boxes}
        with contextlib.ExitStack() as stack:
            # Wrong logins on both gateways until the first delivery reached the dead
            # receiver: from then on its worker is always sending, waiting or retrying.
            warm = [stack.enter_context(WrongLogins(box, "warm")) for box in boxes.values()]
            wait_for(lambda: dead.accepted > 0, 60, "a first delivery to the dead receiver")
        for key, logins in zip(boxes, warm, strict=True):
            statuses[key].update(logins.statuses)
        log(f"dead receiver: notifications are being delivered ({dead.accepted} so far)")
        for rep in range(reps):
            per = {}
            for key in order[rep % 2 :] + order[: rep % 2]:
                box = boxes[key]
                log(f"dead receiver rep {rep + 1}/{reps} {key}")
                accepted = dead.accepted
                hanging = dead.hanging()
                began = time.monotonic()
                # Each load gets the same wrong logins from its first second (new names,
                # so the brute-force gate answers them alike): both arms hash the same
                # passwords at the same moments of their load.
                with WrongLogins(box, f"r{rep}-") as wrong:
                    result = httpload.run_wrk(
                        _url(box), headers[key], connections=16, seconds=seconds
                    )
                result["window"] = (began, time.monotonic())
                result["wrong_logins"] = wrong.sent
                result["login_times"] = wrong.answered
                statuses[key].update(wrong.statuses)
                if key == "gateway-notify-dead":
                    result["deliveries_attempted"] = dead.accepted - accepted
                    # A delivery waiting on the receiver when the load began (or one
                    # begun during it): the notifier was busy throughout.
                    result["delivery_hanging"] = max(hanging, dead.hanging())
                out["runs"][key].append(result)
                per[key] = result["rps"]
            out["ratios"].append(per["gateway-notify-dead"] / per["gateway-notify-off"])
        out["login_statuses"] = {k: dict(v) for k, v in statuses.items()}
        out["deliveries_attempted"] = dead.accepted
        logfile = runner.procs.logdir / "gateway-notify-dead.log"
        text = logfile.read_text(errors="replace") if logfile.exists() else ""
        out["log_not_delivered"] = text.count("not delivered")
    finally:
        for box in boxes.values():
            if box.process is not None:
                runner.procs.stop(box.process)
            box.close()


def _url(box: Box) -> str:
    return f"http://127.0.0.1:{box.http_port}/api/v1/public/cemm"


# -- a login storm ---------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def storm(runner: RunnerLike, seconds: float) -> None:
    """One storm of :data:`STORM_LOGINS` concurrent wrong logins against the account the
    person is logged in with, ``seconds / 6`` after the person's requests began; the person
    goes on for ``seconds`` in all."""
    box = prepare(runner, "gateway-storm", (), own_ns=False)
    runner.results["labels"]["gateway-storm"] = "gateway under a login storm"
    out: dict[str, Any] = runner.results.setdefault("storm", {})
    try:
        launch(runner, box)
        wait_ready(runner, box)
        headers = session(box)
        samples: list[tuple[float, float]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append((time.monotonic(), procs.rss_bytes(box.pids) / 2**20))
                stop.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # The person in a process of their own (bench/person.py): measured in this one,
        # the storm's client threads would hold the interpreter lock while it waits.
        person_process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "bench.person",
                str(box.http_port),
                json.dumps(headers),
                str(PERSON_RATE),
                str(seconds),
            ],
            stdout=subprocess.PIPE,
            cwd=procs.ROOT,
            env={**os.environ, "PYTHONPATH": str(procs.ROOT)},
        )
        began = time.monotonic()
        time.sleep(seconds / 6)
        idle_rss = [m for _, m in samples]
        barrier = threading.Barrier(STORM_LOGINS)
        answers: list[tuple[int, float]] = []

        def guess() -> None:
            barrier.wait(30)
            status = _post_login(box.http_port, systems.USER, "wrong-password")
            answers.append((status, time.monotonic()))

        log(f"login storm: {STORM_LOGINS} concurrent wrong logins")
        guessers = [threading.Thread(target=guess, daemon=True) for _ in range(STORM_LOGINS)]
        storm_at = time.monotonic()
        for thread in guessers:
            thread.start()
        for thread in guessers:
            thread.join(120)
        storm_end = max((t for _, t in answers), default=time.monotonic())
        while (left := seconds - (time.monotonic() - began)) > 0:
            log(f"login storm: the person goes on, {left:.0f} s left")
            time.sleep(min(10.0, left))
        stdout, _ = person_process.communicate(timeout=seconds + 60)
        person = [(t, s, status) for t, s, status in json.loads(stdout)]
        stop.set()
        sampler.join(10)
        during = [s for t, s, _ in person if storm_at <= t <= storm_end]
        all_latencies = [s for _, s, _ in person]
        before = [s for t, s, _ in person if t < storm_at]
        out.update(
            seconds=seconds,
            logins=STORM_LOGINS,
            statuses={str(k): v for k, v in Counter(s for s, _ in answers).items()},
            storm_s=storm_end - storm_at,
            idle_rss_mb=sorted(idle_rss)[len(idle_rss) // 2] if idle_rss else math.nan,
            peak_rss_mb=max((m for t, m in samples if t >= storm_at), default=math.nan),
            person_requests=len(person),
            person_during=len(during),
            person_errors=sum(1 for _, _, status in person if status != 200),
            person_p50_ms=1000 * percentile(during, 0.5),
            person_p99_ms=1000 * percentile(during, 0.99),
            person_max_ms=1000 * max(during, default=math.nan),
            person_p99_before_ms=1000 * percentile(before, 0.99),
            person_p99_all_ms=1000 * percentile(all_latencies, 0.99),
            rss_samples=[(t - began, m) for t, m in samples],
            storm_at_s=storm_at - began,
            # The person's slow requests (> 20 ms): when, how slow - to set beside the RSS.
            person_slow=[(t - began, 1000 * s) for t, s, _ in person if s > 0.02][:300],
        )
        out["rss_growth_mb"] = out["peak_rss_mb"] - out["idle_rss_mb"]
    finally:
        if box.process is not None:
            runner.procs.stop(box.process)
        box.close()
