"""No import cycles among netdoctor's own modules, lazy imports inside functions included.

An import inside a function is still a dependency: a cycle through one shows up as a
half-initialized module the day someone moves that import to the top. Imports under
``if TYPE_CHECKING:`` are annotations only and do not count; nor does the reporter registry
(``netdoctor.reporters.get(name)``), which picks a reporter module by name at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"netdoctor": ROOT / "netdoctor", "netdoctor.adapters": ROOT / "adapters"}


def _module(path: Path) -> str:
    for pkg, base in sorted(PACKAGES.items(), key=lambda kv: -len(str(kv[1]))):
        if base in path.parents:
            parts = [p for p in path.relative_to(base).with_suffix("").parts if p != "__init__"]
            return ".".join([pkg, *parts])
    raise ValueError(path)


def _imports(tree: ast.AST, me: str, is_pkg: bool, modules: set[str]) -> set[str]:
    """Modules ``me`` imports: ``from pkg import sub`` depends on ``pkg.sub`` (a module), and on
    ``pkg`` itself only for names that are not submodules."""
    out: set[str] = set()

    def walk(node: ast.AST) -> None:
        visit(list(ast.iter_child_nodes(node)))

    def visit(children: list[ast.AST]) -> None:
        for child in children:
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                visit(list(child.orelse))
                continue
            if isinstance(child, ast.Import):
                out.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    pkg = me.split(".") if is_pkg else me.split(".")[:-1]
                    pkg = pkg[: len(pkg) - child.level + 1]
                    base = ".".join(pkg + ([base] if base else []))
                subs = {f"{base}.{a.name}" for a in child.names} & modules
                out.update(subs)
                if len(subs) < len(child.names):
                    out.add(base)
            walk(child)

    walk(tree)
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for base in PACKAGES.values() for p in base.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        found = _imports(ast.parse(path.read_text(encoding="utf-8")), name, path.name == "__init__.py", set(files))
        graph[name] = {m for m in found if m in files and m != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_the_checker_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_among_netdoctor_modules():
    graph = _graph()
    assert len(graph) > 100 and "netdoctor.findings" in graph
    assert _cycles(graph) == []
