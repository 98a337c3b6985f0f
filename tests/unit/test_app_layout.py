"""The composition root and what it splits into stay small: no module over 450 lines, no
function over 60 (gateway/app.py, gateway/startup.py, gateway/logins.py, gateway/status.py,
gateway/tasks/)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "gateway"
MODULES = [
    ROOT / "app.py",
    ROOT / "startup.py",
    ROOT / "logins.py",
    ROOT / "status.py",
    *sorted((ROOT / "tasks").glob("*.py")),
]


def test_modules_and_functions_stay_small() -> None:
    too_long = []
    for path in MODULES:
        text = path.read_text()
        if text.count("\n") > 450:
            too_long.append(f"{path.name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    too_long.append(f"{path.name}: {node.name} has {length} lines")
    assert too_long == []
