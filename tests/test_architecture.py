"""Import rules of the whole product: no import cycle between modules, and an import inside a
function only for a heavy module kept out of a process that does not need it, saying so
(``# lazy: <why>``).

Which package may import which is the job of the import-linter contracts (``pyproject.toml``,
run by ``make test``); ``test_contracts.py`` proves they fail on a reverse dependency or a cycle.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("lusweb", "patients", "scoring", "benchmarks")


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
    graph = grimp.build_graph(*SOURCES, include_external_packages=False)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert len(edges) > 150
    assert _cycles(edges) == []


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
    files = [p for pkg in SOURCES for p in sorted((ROOT / pkg).rglob("*.py")) if "migrations" not in p.parts]
    assert len(files) > 150
    assert [line for p in files for line in _unexplained_imports(p)] == []


# --- sizes -------------------------------------------------------------------------------------

MAX_FUNCTION_LINES = 60
MAX_FILE_LINES = 400
REASON = "# length:"


def _oversized(path: Path, root: Path = ROOT) -> list[str]:
    """Functions over 60 lines and a file over 400 lines that do not say why.

    The reason is a ``# length: <why>`` comment above the ``def`` (or its decorators) or in the
    first lines of its body; for a file, one in its first 40 lines.
    """
    lines = path.read_text().splitlines()
    name = path.relative_to(root).as_posix()
    out = []
    if len(lines) > MAX_FILE_LINES and not any(REASON in line for line in lines[:40]):
        out.append(f"{name}: {len(lines)} lines")
    for node in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        window = lines[max(first - 2, 0):first - 1] + lines[node.lineno:node.lineno + 6]
        if length > MAX_FUNCTION_LINES and not any(REASON in line for line in window):
            out.append(f"{name}:{node.lineno} {node.name}(): {length} lines")
    return out


def test_no_oversized_function_or_file_without_a_reason() -> None:
    files = [p for pkg in SOURCES for p in sorted((ROOT / pkg).rglob("*.py")) if "migrations" not in p.parts]
    assert [line for p in files for line in _oversized(p)] == []


def test_the_size_check_finds_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    (tmp_path / "long.py").write_text(f"def f() -> None:\n{body}\n\n\n# length: generated table\ndef g() -> None:\n{body}\n")
    assert _oversized(tmp_path / "long.py", tmp_path) == ["long.py:1 f(): 62 lines"]
