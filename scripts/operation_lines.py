"""How many hand-written lines an operation costs (docstrings excluded), averaged over the
platform's operations: its row in ``emissary/_operations.py``, its async method in
``emissary/_async/resources.py``, its raw twin (one line), and the emulator's handler in
``emissary/testing/_platform.py`` with its entry in the handler table. (The sync client is
generated; models are the spec's types, counted apart.)

    python scripts/operation_lines.py
"""

from __future__ import annotations

import ast
import re
import statistics
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "emissary"


def code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """The lines of a function, decorators included and its docstring left out."""
    lines = (node.end_lineno or node.lineno) - node.lineno + 1 + len(node.decorator_list)
    first = node.body[0] if node.body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        lines -= (first.end_lineno or first.lineno) - first.lineno + 1
    return lines


def rows() -> dict[str, int]:
    """Lines of each ``Operation(...)`` row, by the row's variable."""
    tree = ast.parse((PACKAGE / "_operations.py").read_text())
    found: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            value = node.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "Operation":
                target = node.targets[0] if isinstance(node, ast.Assign) else node.target
                assert isinstance(target, ast.Name)
                found[target.id] = (node.end_lineno or node.lineno) - node.lineno + 1
    return found


def methods() -> tuple[dict[str, int], int]:
    """Lines of each public async method that makes one call of one row (by the row), and
    how many raw twins (``name = raw(...)``) there are."""
    tree = ast.parse((PACKAGE / "_async" / "resources.py").read_text())
    found: dict[str, int] = {}
    twins = 0
    for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
        for member in cls.body:
            if isinstance(member, ast.AsyncFunctionDef) and not member.name.startswith("_"):
                source = ast.unparse(member)
                called = re.findall(r"\bops\.([A-Z_]+)\b", source)
                if len(called) == 1 and "self._call(" in source:
                    found[called[0]] = code_lines(member)
            elif isinstance(member, ast.Assign) and ast.unparse(member.value).startswith("raw("):
                twins += 1
    return found, twins


def handlers() -> dict[str, int]:
    """Lines of each of the emulator's handlers (`Platform`'s async methods but `handle`)."""
    tree = ast.parse((PACKAGE / "testing" / "_platform.py").read_text())
    (platform,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Platform"]
    return {
        member.name: code_lines(member)
        for member in platform.body
        if isinstance(member, ast.AsyncFunctionDef) and member.name != "handle"
    }


def main() -> None:
    row, (method, twins), handler = rows(), methods(), handlers()
    parts = {
        "row": statistics.mean(row.values()),
        "method": statistics.mean(method.values()),
        "raw twin": 1.0,
        "emulator handler": statistics.mean(handler.values()) + 1,  # + its table entry
    }
    print(f"{len(row)} rows, {len(method)} methods, {twins} raw twins, {len(handler)} handlers")
    for name, lines in parts.items():
        print(f"{name:<18}{lines:5.1f}")
    print(f"{'per operation':<18}{sum(parts.values()):5.1f}")


if __name__ == "__main__":
    main()
