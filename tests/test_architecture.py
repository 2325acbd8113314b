"""The Django side's import rules: no import cycle, and an import inside a function only for a
heavy module kept out of the web process, saying so (``# lazy: <why>``).

The layers themselves (which package may import which) are import-linter contracts. The pure
cores (``scoring.core``, ``patients.imaging.core``) and their benchmark are outside this test's
scope: they import no Django and are checked with their own code.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PURE = ("scoring.core", "patients.imaging.core")
SOURCES = ("lusweb", "patients", "scoring", "benchmarks")
NOT_DJANGO_SIDE = ("scoring/core/", "patients/imaging/core/", "benchmarks/bench_scoring.py")


def _django_side(module: str) -> bool:
    return not any(module == p or module.startswith(p + ".") for p in PURE)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for v in sorted(edges):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return found


def test_no_import_cycle_between_modules() -> None:
    """Module level or inside a function: no module imports one that imports it back."""
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph("lusweb", "patients", "scoring", include_external_packages=False)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert [c for c in _cycles(edges) if any(_django_side(m) for m in c)] == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _unexplained_imports(path: Path) -> list[str]:
    """Imports inside functions without ``# lazy:`` on their line or above their block."""
    lines = path.read_text().splitlines()
    out = []
    for fn in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                above = node.lineno - 1
                while above > 0 and (not lines[above - 1].strip()
                                     or lines[above - 1].strip().startswith(("from ", "import "))):
                    above -= 1
                if "# lazy:" not in lines[node.lineno - 1] and "# lazy:" not in lines[above - 1]:
                    out.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    return out


def test_imports_inside_functions_say_why() -> None:
    files = [p for pkg in SOURCES for p in sorted((ROOT / pkg).rglob("*.py"))
             if "migrations" not in p.parts and not any(part in p.as_posix() for part in NOT_DJANGO_SIDE)]
    assert len(files) > 100
    assert [line for p in files for line in _unexplained_imports(p)] == []
