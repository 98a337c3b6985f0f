"""The shape of the code: size limits in the web layer, the CLI and the composition root,
no import cycles anywhere, and an import contract that keeps up with the package list.

Size limits. In `gateway/admin/`, `gateway/portal/`, the CLI (`gateway/cli.py` or
`gateway/cli/`), `gateway/app.py`, `gateway/tasks/` and the settings (`gateway/settings*`)
no module is longer than 450 lines and no function longer than 60 lines. A module's
length is its number of lines as a reader counts them (blank lines and docstrings
included). A function's length runs from its `def` line to its last line, so a nested
function counts towards the function around it and is also measured on its own;
decorators are not counted. Each test names every offender with its length, not only the
first one found.

No import cycles. The modules of `gateway` and `addons` import each other without a
cycle. The graph is grimp's (the library import-linter runs on) and holds every import
statement, including those inside functions and under `if TYPE_CHECKING:`: an import
moved into a function hides a cycle from the interpreter, not from the reader, so it
still counts. A cycle is broken by moving what both sides need into a module both import.
The report names each cycle's modules and every import between them, with line numbers.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "gateway"

MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60

# The layers that carry these limits: files, or folders whose every module does.
LIMITED = ("admin", "portal", "cli", "cli.py", "app.py", "tasks", "settings*")


def limited_modules() -> list[Path]:
    """Every Python module the size limits apply to, sorted."""
    found: set[Path] = set()
    for pattern in LIMITED:
        for path in GATEWAY.glob(pattern):
            if path.is_dir():
                found.update(path.rglob("*.py"))
            elif path.suffix == ".py":
                found.add(path)
    return sorted(found)


def functions(tree: ast.AST) -> Iterator[tuple[str, int]]:
    """(qualified name, length in lines) for every function and method, nested ones too."""

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                end = child.end_lineno or child.lineno
                yield name, end - child.lineno + 1
                yield from walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    return walk(tree, "")


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_limited_layers_are_found() -> None:
    names = {relative(path) for path in limited_modules()}
    assert "gateway/app.py" in names
    assert any(name.startswith("gateway/admin/") for name in names)
    assert any(name.startswith("gateway/portal/") for name in names)
    assert any(name.startswith("gateway/settings") for name in names)
    assert any(name.startswith("gateway/cli") for name in names)


def test_no_module_over_450_lines() -> None:
    offenders = []
    for path in limited_modules():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            offenders.append(f"{relative(path)}: {lines} lines")
    assert not offenders, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(offenders)


def test_no_function_over_60_lines() -> None:
    offenders = []
    for path in limited_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, lines in functions(tree):
            if lines > MAX_FUNCTION_LINES:
                offenders.append(f"{relative(path)}::{name}: {lines} lines")
    assert not offenders, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(offenders)


def test_a_nested_function_counts_towards_its_outer_function() -> None:
    source = "def outer():\n    def inner():\n        return 1\n    return inner\n\n" + (
        "class Box:\n    async def method(self):\n        pass\n"
    )
    assert dict(functions(ast.parse(source))) == {
        "outer": 4,
        "outer.inner": 2,
        "Box.method": 2,
    }


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    modules = sorted(graph.modules)
    imports = {
        module: sorted(graph.find_modules_directly_imported_by(module)) for module in modules
    }
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in modules:
        if start in index:
            continue
        work = [(start, iter(imports[start]))]
        index[start] = lowest[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            module, pending = work[-1]
            imported = next(pending, None)
            if imported is not None:
                if imported not in index:
                    index[imported] = lowest[imported] = len(index)
                    stack.append(imported)
                    on_stack.add(imported)
                    work.append((imported, iter(imports[imported])))
                elif imported in on_stack:
                    lowest[module] = min(lowest[module], index[imported])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                lowest[parent] = min(lowest[parent], lowest[module])
            if lowest[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return sorted(cycles)


def describe(graph: grimp.ImportGraph, cycle: list[str]) -> str:
    lines = [" <-> ".join(cycle)]
    members = set(cycle)
    for importer in cycle:
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & members):
            for detail in graph.get_import_details(importer=importer, imported=imported):
                lines.append(
                    f"    {importer} -> {imported} "
                    f"(l.{detail['line_number']}: {detail['line_contents']})"
                )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def import_graph() -> grimp.ImportGraph:
    sys.path.insert(0, str(ROOT))
    try:
        return grimp.build_graph("gateway", "addons", cache_dir=None)
    finally:
        sys.path.remove(str(ROOT))


def test_no_import_cycles(import_graph: grimp.ImportGraph) -> None:
    cycles = import_cycles(import_graph)
    assert not cycles, "import cycles:\n" + "\n".join(
        describe(import_graph, cycle) for cycle in cycles
    )


def test_the_cycle_finder_finds_direct_indirect_and_function_level_cycles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "loops"
    package.mkdir()
    files = {
        "__init__.py": "",
        "a.py": "import loops.b\n",
        "b.py": "def later():\n    from loops import c\n",
        "c.py": "from loops.a import *\n",
        "d.py": "import loops.e\n",
        "e.py": "from loops import d\n",
        "f.py": "import loops.a\n",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("loops", cache_dir=None)
    assert import_cycles(graph) == [["loops.a", "loops.b", "loops.c"], ["loops.d", "loops.e"]]
    assert "loops.b -> loops.c (l.2:" in describe(graph, ["loops.a", "loops.b", "loops.c"])


def test_the_simulator_contract_lists_every_other_part_of_the_gateway() -> None:
    """The simulator rule is a forbidden-import contract over the gateway's other modules
    and packages by name; a new one under gateway/ must be added to it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (simulator,) = [c for c in contracts if c.get("source_modules") == ["gateway.simulator"]]
    parts = {
        f"gateway.{path.stem if path.suffix == '.py' else path.name}"
        for path in GATEWAY.iterdir()
        if (path.suffix == ".py" and path.name != "__init__.py")
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    missing = parts - {"gateway.simulator"} - set(simulator["forbidden_modules"])
    assert not missing, f"add to the simulator contract in pyproject.toml: {sorted(missing)}"
