"""The features package keeps the layering: pure pandas, no import of models or pipeline, no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import features

FEATURES_DIR = Path(features.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(FEATURES_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or in a function (``from a import b``: a and a.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in sorted(FEATURES_DIR.rglob("*.py"))}
    return {name: _imports(path) & set(modules) - {name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of the graph as the modules along it, or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return []


def test_features_import_neither_models_nor_pipeline_nor_mlflow_nor_lightgbm():
    for path in sorted(FEATURES_DIR.rglob("*.py")):
        top = {name.split(".")[0] for name in _imports(path)}
        assert not top & {"models", "pipeline", "mlflow", "lightgbm"}, path.name


def test_the_features_modules_import_each_other_without_a_cycle():
    graph = _graph()
    # The ledger's DataFrames sit on its array core, which sits on the prepared arrays.
    assert {"features.clearing", "features.arrears", "features.episodes"} <= graph[
        "features.ledger"
    ]
    assert "features.prepare" in graph["features.clearing"]
    assert _cycle(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []
