"""Packaging: the image (requirements/runtime.lock) and CI (requirements/dev.lock) install
the same version of every package they share, and each lock holds what pyproject.toml
declares for it. scripts/lock makes the locks this way (dev.lock first, then runtime.lock
under it as a constraint); this test catches a lock edited or regenerated another way.

Whether the code imports only what it declares is deptry's job (scripts/test).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements"

# "name==version ; marker \" at the start of a line; a package may appear once per marker.
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)(?:\s*;\s*([^\\]+?))?\s*\\?$", re.M)


def pins(lock: str) -> dict[tuple[str, str], str]:
    """{(canonical name, environment marker or ""): version} of one lock file."""
    text = (REQUIREMENTS / lock).read_text(encoding="utf-8")
    return {
        (canonicalize_name(name), (marker or "").strip()): version
        for name, version, marker in PIN.findall(text)
    }


def declared(extra: str | None) -> set[str]:
    """Canonical names pyproject.toml lists as dependencies, or in one extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    listed = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return {canonicalize_name(Requirement(text).name) for text in listed}


def test_the_pin_pattern_reads_plain_and_marked_pins() -> None:
    sample = "anyio==4.14.2 ; python_full_version < '3.15' \\\nfoo-bar==1.0 \\\n"
    assert {m[:2] for m in PIN.findall(sample)} == {("anyio", "4.14.2"), ("foo-bar", "1.0")}


def test_image_and_ci_pin_the_same_version_of_every_shared_package() -> None:
    runtime, dev = pins("runtime.lock"), pins("dev.lock")
    assert runtime, "no pins read from runtime.lock"
    different = {
        key: (version, dev[key])
        for key, version in runtime.items()
        if key in dev and dev[key] != version
    }
    assert not different, f"runtime.lock vs dev.lock: {different}"
    # A pin the image takes only on some platforms is tested when CI pins the same
    # version on every platform (no marker).
    missing = sorted(
        (name, marker)
        for name, marker in set(runtime) - set(dev)
        if dev.get((name, "")) != runtime[(name, marker)]
    )
    assert not missing, f"in runtime.lock but not in dev.lock (CI never tested them): {missing}"


def test_each_lock_holds_what_pyproject_declares_for_it() -> None:
    runtime = {name for name, _ in pins("runtime.lock")}
    dev = {name for name, _ in pins("dev.lock")}
    assert declared(None) <= runtime, declared(None) - runtime
    extras = declared(None) | declared("dev") | declared("bench")
    assert extras <= dev, extras - dev


def test_test_and_benchmark_packages_stay_out_of_the_image() -> None:
    runtime = {name for name, _ in pins("runtime.lock")}
    only_for_development = {"netaddr", "matplotlib", "py-spy", "pytest", "deptry"}
    assert not runtime & only_for_development, runtime & only_for_development
