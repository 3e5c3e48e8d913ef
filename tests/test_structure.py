"""Structure rules from docs/internals.md, checked on the source: function size and import cycles.

- No function in host/ or cellmodel/ over 80 lines, none in firmware/ over 100: a
  function that long hides named steps (the firmware's bound is looser because a
  MicroPython method call is not free in flash and time).
- No import cycle among the host's and the cell model's modules, counting imports
  inside functions (they hid one) but not those under `if TYPE_CHECKING:` (they
  never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LIMITS = {"host": 80, "cellmodel": 80, "firmware": 100}


def _sources(top: str) -> list[Path]:
    return sorted(p for p in (REPO / top).rglob("*.py") if "__pycache__" not in p.parts)


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


@pytest.mark.parametrize("top", sorted(LIMITS))
def test_no_function_is_longer_than_its_limit(top: str) -> None:
    limit = LIMITS[top]
    too_long = []
    for path in _sources(top):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in _functions(tree):
            assert fn.end_lineno is not None
            # From the def line (decorators excluded) to the last line of the body.
            length = fn.end_lineno - fn.lineno + 1
            if length > limit:
                too_long.append(f"{path.relative_to(REPO)}:{fn.lineno} {fn.name}: {length} lines")
    assert not too_long, f"functions over {limit} lines:\n" + "\n".join(too_long)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_imports(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """Every module imported when the code runs (function bodies included)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            # "from pkg import sub" imports the submodule when sub is one.
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def _import_graph() -> dict[str, set[str]]:
    paths = _sources("host") + _sources("cellmodel")
    modules = {_module_name(p): p for p in paths if "rom" not in p.parts}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = _runtime_imports(tree, name, path.name == "__init__.py")
        graph[name] = {m for m in imported if m in modules and m != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _package_cycle(comp: list[str]) -> bool:
    """A package's __init__ re-exporting a submodule that imports a sibling through the
    package: Python resolves it (the package is partly initialised), and it is how a
    package's public names are made, so it is not counted."""
    tops = {m for m in comp if any(o.startswith(m + ".") for o in comp)}
    return bool(tops) and all(any(m.startswith(t) for t in tops) for m in comp)


def test_import_graph_has_no_cycles() -> None:
    graph = _import_graph()
    assert "cellmodel.pack" in graph and "host.emulator.loop" in graph
    cycles = [c for c in _cycles(graph) if not _package_cycle(c)]
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
