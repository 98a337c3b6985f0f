"""Processes the benchmark starts, and the network namespace it runs in.

Every process is started in a session of its own, remembered by PID and ended through its
own process group (SIGTERM, then SIGKILL) - never by name. :func:`enter_own_netns` moves
the runner, before it starts anything, into a fresh network namespace whose only
interface is its own loopback: every byte of load stays inside it, and nothing else on
the machine shares its ports.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else "python3"

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def enter_own_netns() -> str:
    """Unshare the network namespace and bring its loopback up; say where we run.

    Needs root; without it the runner stays on the host's loopback (and says so).
    Must run before any thread or child process exists.
    """
    if os.geteuid() != 0 or not hasattr(os, "unshare"):
        return "the host's loopback (not root, so no network namespace of its own)"
    os.unshare(os.CLONE_NEWNET)
    bring_loopback_up()
    return "a network namespace of its own (loopback only)"


def bring_loopback_up() -> None:
    """``ip link set lo up`` in the calling thread's network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | _IFF_UP))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Procs:
    """The processes this run started, each killed by its own PID (and process group)."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._running: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
        stdin: int | None = subprocess.DEVNULL,
    ) -> subprocess.Popen[bytes]:
        log = (self.logdir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            list(argv),
            stdin=stdin,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        log.close()
        self._running.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], timeout: float = 5.0) -> int | None:
        """SIGTERM to the process group it leads, then SIGKILL; returns the exit code."""
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        # Children that outlived their leader (nginx workers) are still in its group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(ValueError):
            self._running.remove(process)
        return process.returncode

    def close(self) -> None:
        for process in reversed(list(self._running)):
            self.stop(process, timeout=3.0)


def rss_bytes(pids: Sequence[int]) -> int:
    """Resident memory of these processes and their children, summed."""
    total = 0
    seen: set[int] = set()
    for pid in pids:
        try:
            process = psutil.Process(pid)
            family = [process, *process.children(recursive=True)]
        except psutil.Error:
            continue
        for member in family:
            if member.pid in seen:
                continue
            seen.add(member.pid)
            with contextlib.suppress(psutil.Error):
                total += member.memory_info().rss
    return total


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            process = psutil.Process(pid)
            family = [process, *process.children(recursive=True)]
        except psutil.Error:
            continue
        for member in family:
            with contextlib.suppress(psutil.Error):
                times = member.cpu_times()
                total += times.user + times.system
    return total


def _family(pids: Sequence[int]) -> list[psutil.Process]:
    found: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            process = psutil.Process(pid)
            members = [process, *process.children(recursive=True)]
        except psutil.Error:
            continue
        for member in members:
            found.setdefault(member.pid, member)
    return list(found.values())


def cpu_seconds_all(pids: Sequence[int]) -> float:
    """CPU seconds of these processes and their descendants, including the children each
    of them started and reaped (``ip``, ``wg``, ``nft`` ... run by a check): a reaped
    child's time moves into its parent's ``children_*``. Compare two readings."""
    total = 0.0
    for member in _family(pids):
        with contextlib.suppress(psutil.Error):
            t = member.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def wakeups(pids: Sequence[int]) -> int:
    """Voluntary context switches of every thread of these processes and their living
    descendants (a thread that sleeps and wakes up counts one each time)."""
    return sum(wakeups_by_thread(pids).values())


def wakeups_by_thread(pids: Sequence[int]) -> dict[int, int]:
    """:func:`wakeups` per thread id."""
    found: dict[int, int] = {}
    for member in _family(pids):
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{member.pid}/task").iterdir():
                with contextlib.suppress(OSError, ValueError):
                    for line in (task / "status").read_text().splitlines():
                        if line.startswith("voluntary_ctxt_switches:"):
                            found[int(task.name)] = int(line.split()[1])
    return found


def thread_names(pid: int, py_spy: str | None) -> dict[int, str]:
    """Thread id -> name: Python's thread names (``py-spy dump``, when installed) for
    Python processes, else the kernel's (``comm``) - for every thread of ``pid``'s family."""
    names: dict[int, str] = {}
    for member in _family([pid]):
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{member.pid}/task").iterdir():
                with contextlib.suppress(OSError, ValueError):
                    names[int(task.name)] = (task / "comm").read_text().strip()
    if py_spy is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(
                [py_spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30
            )
            for match in re.finditer(r'^Thread (\d+) \(\w+\): "([^"]*)"', done.stdout, re.M):
                names[int(match.group(1))] = match.group(2)
    return names


def wait_until(check: object, timeout: float, interval: float = 0.01) -> float:
    """Call ``check()`` until it is true; seconds it took. Raises TimeoutError."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return time.monotonic() - started
        except RuntimeError:
            raise  # the process died: no point waiting
        except Exception:  # not ready yet
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"not ready within {timeout} s")
        time.sleep(interval)
