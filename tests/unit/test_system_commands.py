"""The one module that runs programs: lists only, timeouts, stderr in the error."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from gateway.system import commands

PY = sys.executable


def test_runs_a_list_and_returns_its_output() -> None:
    result = asyncio.run(commands.run([PY, "-c", "print('hello')"]))
    assert result.returncode == 0
    assert result.stdout == "hello\n"
    assert result.argv == (PY, "-c", "print('hello')")


@pytest.mark.parametrize("bad", ["ip neigh", b"ip", [], ["ip", 1]])
def test_refuses_anything_but_a_list_of_strings(bad: object) -> None:
    with pytest.raises(TypeError):
        asyncio.run(commands.run(bad))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        commands.run_sync(bad)  # type: ignore[arg-type]


def test_no_shell_is_involved() -> None:
    # A shell would expand this; as one argument it is printed as it is.
    result = asyncio.run(commands.run([PY, "-c", "import sys; print(sys.argv[1])", "$HOME;id"]))
    assert result.stdout.strip() == "$HOME;id"


def test_failure_carries_the_exit_status_and_stderr() -> None:
    code = "import sys; sys.stderr.write('Device \"nope\" does not exist.'); sys.exit(3)"
    with pytest.raises(commands.CommandError) as raised:
        asyncio.run(commands.run([PY, "-c", code]))
    assert raised.value.returncode == 3
    assert 'Device "nope" does not exist.' in str(raised.value)
    assert "exit status 3" in str(raised.value)
    with pytest.raises(commands.CommandError, match="does not exist"):
        commands.run_sync([PY, "-c", code])


def test_unchecked_failure_is_returned() -> None:
    result = asyncio.run(commands.run([PY, "-c", "import sys; sys.exit(2)"], check=False))
    assert result.returncode == 2


def test_missing_program_says_so() -> None:
    with pytest.raises(commands.CommandNotFound, match="not installed"):
        asyncio.run(commands.run(["cemm-gateway-no-such-program", "x"]))
    with pytest.raises(commands.CommandNotFound):
        commands.run_sync(["cemm-gateway-no-such-program"])


def test_timeout_kills_the_program() -> None:
    started = time.monotonic()
    with pytest.raises(commands.CommandTimeout, match=r"timed out after 0\.3 s"):
        asyncio.run(commands.run([PY, "-c", "import time; time.sleep(30)"], timeout=0.3))
    assert time.monotonic() - started < 5
    with pytest.raises(commands.CommandTimeout):
        commands.run_sync([PY, "-c", "import time; time.sleep(30)"], timeout=0.3)


def test_input_reaches_the_program() -> None:
    code = "import sys; print(sys.stdin.read().upper())"
    assert asyncio.run(commands.run([PY, "-c", code], input=b"key")).stdout.strip() == "KEY"
    assert commands.run_sync([PY, "-c", code], input=b"key").stdout.strip() == "KEY"
