"""The server's layout: no module imports another that (directly or through others) imports it back,
counting imports made only for type checking (a cycle there is still two modules that can't be read
apart). Found by reading every module's import statements, so it fails on a cycle before any runs."""

from __future__ import annotations

import ast
from pathlib import Path

import hit_server

PACKAGE_ROOT = Path(hit_server.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each hit_server module -> the hit_server modules it imports."""
    modules = {module_name(p): p for p in PACKAGE_ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in modules:
                for alias in node.names:  # `from package import module` names a module
                    target = f"{node.module}.{alias.name}"
                    graph[name].add(target if target in modules else node.module)
            elif isinstance(node, ast.Import):
                graph[name].update(alias.name for alias in node.names if alias.name in modules)
        graph[name].discard(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that reach each other (strongly connected, more than one module)."""
    found: list[list[str]] = []
    for start in sorted(graph):
        reach, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in reach:
                    reach.add(nxt)
                    todo.append(nxt)
        if start in reach:
            group = sorted(m for m in reach if _reaches(graph, m, start))
            if group not in found:
                found.append(group)
    return found


def _reaches(graph: dict[str, set[str]], source: str, target: str) -> bool:
    seen, todo = {source}, [source]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt == target:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return source == target


def test_layout_the_server_has_no_import_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 50 and "hit_server.exchange.blofin_client" in graph
    assert cycles(graph) == []


def test_layout_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
