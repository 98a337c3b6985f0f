"""docs/operations.md's metric list, scrape configuration and alert rules name real metrics.

Every ``cemm_gateway_*`` and ``process_*`` name in the page's Metrics section is one the
gateway exports (a counter's ``_total``, a histogram's ``_bucket``/``_count``/``_sum``
included), every exported family is in the table, and the YAML blocks parse.
"""

from __future__ import annotations

import re
from pathlib import Path

from ruamel.yaml import YAML

from gateway.metrics import (
    FAMILIES,
    HISTOGRAM_FAMILIES,
    PREFIX,
    PROCESS_FAMILIES,
    WIREGUARD_FAMILIES,
)

PAGE = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
SUFFIXES = ("_total", "_bucket", "_count", "_sum")


def _section() -> str:
    text = PAGE.read_text()
    start = text.index("## Metrics\n")
    return text[start : text.index("\n## ", start + 1)]


def _family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def _table_names() -> set[str]:
    """The first column's names; the table leaves out the ``cemm_gateway_`` prefix."""
    names = set()
    for row in re.findall(r"^\| (`.*?) \|", _section(), flags=re.M):
        for name in re.findall(r"`([a-z_]+)", row):
            names.add(name if name.startswith("process_") else PREFIX + name)
    return names


def test_every_name_in_the_section_is_exported() -> None:
    exported = {PREFIX + f for f in (*FAMILIES, *HISTOGRAM_FAMILIES, *WIREGUARD_FAMILIES)}
    exported |= set(PROCESS_FAMILIES)
    named = set(re.findall(r"\b(?:cemm_gateway|process)_[a-z_]+", _section())) - {PREFIX}
    named |= _table_names()
    assert {name for name in named if _family(name) not in exported} == set()
    listed = {_family(name) for name in _table_names()}
    assert {PREFIX + f for f in (*FAMILIES, *HISTOGRAM_FAMILIES, *WIREGUARD_FAMILIES)} <= listed


def test_the_yaml_examples_parse() -> None:
    blocks = re.findall(r"^```yaml\n(.*?)^```", _section(), flags=re.S | re.M)
    assert len(blocks) == 2
    scrape, rules = (YAML(typ="safe").load(block) for block in blocks)
    assert scrape["scrape_configs"][0]["metrics_path"] == "/metrics"
    alerts = rules["groups"][0]["rules"]
    assert len(alerts) >= 5 and all(rule["expr"] and rule["alert"] for rule in alerts)
