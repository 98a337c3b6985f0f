"""The CLI prints byte for byte what the recorded transcript says it printed.

A difference is either a regression or a deliberate change of output; for the latter,
re-record (see ``tests/cli/transcript.py``) and say so in the commit.
"""

from __future__ import annotations

from pathlib import Path

from tests.cli.transcript import record

RECORDED = Path(__file__).with_name("transcript.txt")


def test_cli_prints_what_the_transcript_recorded() -> None:
    assert record() == RECORDED.read_text()
