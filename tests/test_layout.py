"""The layout keeps its shape: no import cycle inside claudekit/, no function over a screen (issue 22).

The layers themselves are checked by ``lint-imports`` (contracts in pyproject.toml); import-linter does not
look for cycles inside a layer, so this walks every import (``TYPE_CHECKING`` and function-level ones too).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "claudekit"
MAX_LINES = 60

# Cycles still to break, each a set of modules; a TODO, not a licence (the test fails once one is gone so
# the list shrinks). None left.
TODO_CYCLES: list[frozenset[str]] = []

# Type-only knots kept on purpose, with the reason. A Reply carries the error that ended it and an error
# carries the partial Reply: two halves of one public type; a Protocol on either side would weaken the
# type users see on ``reply.error`` or ``err.reply``. Both live in _base, so no layer is crossed.
TYPE_KNOTS: dict[frozenset[str], str] = {
    frozenset({"_base._errors", "_base._reply"}): "Reply.error <-> ClaudekitError.reply (annotations only)",
}

# Functions allowed over MAX_LINES. DATA: a table, not logic (none today).
LONG_FUNCTIONS: dict[str, str] = {}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its text (type-only and in functions too)."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for target in _targets(node, package):
                while target and target not in files:
                    target = target.rpartition(".")[0]  # a name imported from a module: the module
                if target and target != name:
                    graph[name].add(target)
    return graph


def _targets(node: ast.AST, package: str) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        yield from (f"{base}.{alias.name}" for alias in node.names)  # a submodule, or a name in `base`


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = set()
                while True:
                    member = stack.pop()
                    members.add(member)
                    if member == node:
                        break
                if len(members) > 1:
                    found.append(frozenset(members))
    return found


def long_functions(root: Path) -> dict[str, int]:
    """`module:Class.function` -> its length in lines (signature to last line) for those over MAX_LINES."""
    out: dict[str, int] = {}
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root).partition(".")[2] or root.name
        out.update(_long_in(ast.parse(path.read_text(encoding="utf-8")), f"{module}:"))
    return out


def _long_in(node: ast.AST, prefix: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = prefix + child.name
            if not isinstance(child, ast.ClassDef) and child.end_lineno is not None:
                lines = child.end_lineno - child.lineno + 1
                if lines > MAX_LINES:
                    out[name] = lines
            out.update(_long_in(child, name + "."))
    return out


def _short(names: frozenset[str]) -> frozenset[str]:
    return frozenset(n.removeprefix("claudekit.") for n in names)


def test_no_import_cycle_in_claudekit() -> None:
    found = [_short(c) for c in cycles(import_graph(PACKAGE))]
    assert [sorted(c) for c in found if c not in TODO_CYCLES and c not in TYPE_KNOTS] == []
    assert [sorted(c) for c in TODO_CYCLES if c not in found] == [], "broken: take it off TODO_CYCLES"


def test_no_function_over_a_screen() -> None:
    found = long_functions(PACKAGE)
    assert {k: v for k, v in found.items() if k not in LONG_FUNCTIONS} == {}
    assert [k for k in LONG_FUNCTIONS if k not in found] == [], "now short: take it off LONG_FUNCTIONS"


def test_the_walk_sees_type_checking_and_function_level_imports(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("")
    (root / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sub.b import B\n"
    )
    (root / "sub" / "b.py").write_text("def f():\n    from .. import c\n")
    (root / "c.py").write_text("from pkg import a\n")
    (root / "d.py").write_text("def g():\n" + "    x = 1\n" * MAX_LINES)
    assert cycles(import_graph(root)) == [frozenset({"pkg.a", "pkg.sub.b", "pkg.c"})]
    assert long_functions(root) == {"d:g": MAX_LINES + 1}
