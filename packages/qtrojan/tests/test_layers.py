"""Imports inside qtrojan point one way (issue 15): down the layer table, and never in a cycle.

The graph is read from the source with ``ast`` (function-level imports included, since the CLI
imports lazily). A module may import modules of its own layer or below; an import that points
up a layer, or any cycle, fails. A module missing from :data:`LAYERS` fails too, so a new module
is placed deliberately. The checker itself is tested on a small graph with both faults.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "qtrojan"

#: module (relative to ``qtrojan``) -> layer; imports may point to the same or a lower layer
LAYERS: dict[str, int] = {
    "sim": 0, "metrics": 0, "data": 0, "stats": 0,
    "circuit": 1,
    "executor": 2, "compiler": 2, "bipartite": 2,
    "qnn": 3, "noise": 3, "qasm": 3,
    "training": 4,
    "attacks": 5, "attacks.dpba": 5, "attacks.qtrojan": 5,
    "detect": 6, "export": 6,
    "experiments": 7, "experiments.config": 7, "experiments.records": 7,
    "experiments.report": 7, "experiments.runner": 7, "experiments.compare": 7,
    "experiments.studies": 7,
    "cli": 8, "__init__": 8,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """``module -> {qtrojan modules it imports}`` for every ``.py`` file under ``src``."""
    modules = {_module_name(p): p for p in src.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for t in targets:
                if t.startswith("qtrojan."):
                    rel = t[len("qtrojan."):]
                    if rel in modules and rel != name:
                        deps.add(rel)
        graph[name] = deps
    return graph


def violations(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    """Upward imports, modules without a layer, and cycles, as readable lines."""
    out = [f"{m} has no layer in LAYERS" for m in graph if m not in layers]
    for m, deps in graph.items():
        for d in deps:
            if m in layers and d in layers and layers[d] > layers[m]:
                out.append(f"{m} (layer {layers[m]}) imports {d} (layer {layers[d]})")
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                out.append("cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return out


def test_imports_point_down_and_form_no_cycle() -> None:
    graph = import_graph()
    assert "attacks.qtrojan" in graph and "compiler" in graph["attacks.qtrojan"]
    assert violations(graph, LAYERS) == []


def test_checker_reports_upward_imports_cycles_and_unplaced_modules() -> None:
    layers = {"low": 0, "mid": 1, "high": 2}
    graph = {"low": {"high"}, "mid": {"low"}, "high": {"mid"}, "new": set()}
    found = violations(graph, layers)
    assert "low (layer 0) imports high (layer 2)" in found
    assert any(v.startswith("cycle:") and "low" in v and "high" in v for v in found)
    assert "new has no layer in LAYERS" in found
    # a same-layer cycle is caught even though no edge points up
    assert any(v.startswith("cycle:") for v in violations({"a": {"b"}, "b": {"a"}},
                                                          {"a": 0, "b": 0}))
