"""Package-wide rule: no import cycles between the package's modules.

Imports inside functions count too: a deferred import hides a cycle from the
interpreter but not from a reader, who can no longer tell which module builds on which.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hyperspy_mnvalence

ROOT = Path(hyperspy_mnvalence.__file__).parent
PACKAGE = ROOT.name


def _module_name(path: Path, root: Path) -> str:
    parts = (PACKAGE,) + path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Edges module -> package modules it imports (at any level of the file)."""
    files = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [module] + [f"{module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            graph[name].update(t for t in targets if t in files and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _is_package_init(name: str, graph: dict[str, set[str]]) -> bool:
    return any(other.startswith(name + ".") for other in graph)


def test_no_import_cycles():
    graph = import_graph()
    # a package's __init__ re-exporting its submodules is not a dependency of theirs
    # on it; drop edges from a submodule up to its own package's __init__
    pruned = {
        v: {w for w in ws if not (_is_package_init(w, graph) and v.startswith(w + "."))}
        for v, ws in graph.items()
    }
    assert len(graph) > 40  # the walk found the package
    assert cycles(pruned) == []


def test_cycle_finder_finds_a_deferred_import_cycle(tmp_path):
    pkg = tmp_path / PACKAGE
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import g\n")
    (pkg / "b.py").write_text("def g():\n    from .a import f\n")
    (pkg / "c.py").write_text("from . import a\n")
    found = cycles(import_graph(pkg))
    assert found == [[f"{PACKAGE}.a", f"{PACKAGE}.b"]]
