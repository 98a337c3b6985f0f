"""The one module that runs subprocesses (``ip``, later ``wg``, ``nft``, ``wireguard-go``).

Rules, so that every caller gets them without thinking:

- Arguments are a list of strings, never a shell command line: nothing a device or a user
  sends can become shell syntax. The first element is the program, looked up in ``PATH``.
- Every run has a timeout; a program that overstays it is killed (SIGKILL) and reaped.
- A failure is a :class:`CommandError` whose message names the command and carries its
  exit status and stderr, so a log line says what went wrong without a second look.
- The environment is the gateway's own with ``LC_ALL=C``, so output is parseable.

The async API (:func:`run`) is what the gateway's event loop uses; :func:`run_sync` is for
the CLI. Code that needs commands takes a :data:`Runner` argument, so tests can hand in a
fake that records the arguments and returns canned output.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import IO

DEFAULT_TIMEOUT = 10.0
_STDERR_LIMIT = 2000


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class CommandError(Exception):
    """A command could not be run, timed out, or exited non-zero."""

    def __init__(
        self, argv: Sequence[str], problem: str, *, returncode: int | None = None, stderr: str = ""
    ) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr
        text = f"{shlex.join(self.argv)}: {problem}"
        tail = stderr.strip()[-_STDERR_LIMIT:]
        if tail:
            text += f": {tail}"
        super().__init__(text)


class CommandNotFound(CommandError):
    """The program is not installed (not in ``PATH``)."""


class CommandTimeout(CommandError):
    """The program did not finish within its timeout and was killed."""


Runner = Callable[..., Awaitable[CommandResult]]
"""``await runner(argv, *, timeout=..., check=True, input=None)``: :func:`run`'s shape."""


def _argv(args: Sequence[str]) -> list[str]:
    if isinstance(args, str | bytes) or not args:
        raise TypeError("a command is a non-empty list of strings, never a shell string")
    argv = list(args)
    if not all(isinstance(arg, str) for arg in argv):
        raise TypeError(f"every argument must be a string: {argv!r}")
    return argv


def _environment() -> dict[str, str]:
    return {**os.environ, "LC_ALL": "C"}


async def run(
    args: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    check: bool = True,
    input: bytes | None = None,
) -> CommandResult:
    """Run ``args`` without a shell; return its output, or raise :class:`CommandError`."""
    argv = _argv(args)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_environment(),
        )
    except FileNotFoundError:
        raise CommandNotFound(argv, "not installed (not found in PATH)") from None
    except OSError as error:
        raise CommandError(argv, f"cannot start: {error.strerror or error}") from None
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(input), timeout)
    except TimeoutError:
        _kill(process)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait(), 5.0)
        raise CommandTimeout(argv, f"timed out after {timeout:g} s") from None
    except asyncio.CancelledError:
        _kill(process)
        with contextlib.suppress(Exception):
            await asyncio.shield(asyncio.wait_for(process.wait(), 5.0))
        raise
    result = CommandResult(
        tuple(argv),
        process.returncode if process.returncode is not None else -1,
        stdout.decode(errors="replace"),
        stderr.decode(errors="replace"),
    )
    if check and result.returncode != 0:
        raise CommandError(
            argv,
            f"exit status {result.returncode}",
            returncode=result.returncode,
            stderr=result.stderr,
        )
    return result


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()


def run_sync(
    args: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    check: bool = True,
    input: bytes | None = None,
) -> CommandResult:
    """:func:`run` for code outside the event loop (the CLI)."""
    argv = _argv(args)
    try:
        completed = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            timeout=timeout,
            env=_environment(),
            check=False,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise CommandNotFound(argv, "not installed (not found in PATH)") from None
    except subprocess.TimeoutExpired:
        raise CommandTimeout(argv, f"timed out after {timeout:g} s") from None
    except OSError as error:
        raise CommandError(argv, f"cannot start: {error.strerror or error}") from None
    result = CommandResult(
        tuple(argv),
        completed.returncode,
        completed.stdout.decode(errors="replace"),
        completed.stderr.decode(errors="replace"),
    )
    if check and result.returncode != 0:
        raise CommandError(
            argv,
            f"exit status {result.returncode}",
            returncode=result.returncode,
            stderr=result.stderr,
        )
    return result


async def spawn(
    args: Sequence[str], *, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    """Start a long-running program (``wireguard-go``).

    Its output goes to a temporary file, never to a pipe nobody reads (a full pipe would
    stall the program); :func:`spawned_output` reads it back for an error message. The
    caller owns the process: it watches ``returncode`` and ends it with :func:`terminate`.
    """
    argv = _argv(args)
    output = tempfile.TemporaryFile()
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**_environment(), **(env or {})},
        )
        _outputs[process.pid] = output
        return process
    except FileNotFoundError:
        output.close()
        raise CommandNotFound(argv, "not installed (not found in PATH)") from None
    except OSError as error:
        output.close()
        raise CommandError(argv, f"cannot start: {error.strerror or error}") from None


_outputs: dict[int, IO[bytes]] = {}


def spawned_output(process: asyncio.subprocess.Process, limit: int = _STDERR_LIMIT) -> str:
    """The last output of a program started with :func:`spawn`."""
    output = _outputs.get(process.pid)
    if output is None:
        return ""
    output.seek(0)
    return output.read().decode(errors="replace")[-limit:]


async def terminate(process: asyncio.subprocess.Process, *, timeout: float = 3.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; always reaped."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        _kill(process)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait(), 5.0)
    output = _outputs.pop(process.pid, None)
    if output is not None:
        output.close()
