"""Imports point one way: each flexsync module imports only its own layer or lower ones, and
no two modules import each other, directly or in a cycle (function-level imports count too).

The layers, top to bottom (ARCHITECTURE in the package README):

    cli, bench, the package's public face  →  api  →  launch, preflight  →  train.assemble
    →  report  →  train (loop, checkpoint, metrics, injection), integrations
    →  config, workloads  →  strategies, data, models  →  compress, comm  →  net, errors
"""

from __future__ import annotations

import ast
from pathlib import Path

import flexsync

ROOT = Path(flexsync.__file__).parent
LAYERS = [
    ("flexsync.net", 0), ("flexsync.errors", 0),
    ("flexsync.compress", 1), ("flexsync.comm", 1),
    ("flexsync.strategies", 2), ("flexsync.data", 2), ("flexsync.models", 2),
    ("flexsync.config", 3), ("flexsync.workloads", 3),
    ("flexsync.train", 4), ("flexsync.integrations", 4),
    ("flexsync.report", 5),
    ("flexsync.train.assemble", 6),
    ("flexsync.launch", 7), ("flexsync.preflight", 7),
    ("flexsync.api", 8),
    ("flexsync.cli", 9), ("flexsync.bench", 9), ("flexsync.quality", 9),
    ("flexsync.__main__", 9), ("flexsync", 9),
]


def layer(module: str) -> int:
    best = max((p for p, _ in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return dict(LAYERS)[best]


def modules() -> dict[str, Path]:
    out = {}
    for f in ROOT.rglob("*.py"):
        parts = list(f.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = f
    return out


def imports(path: Path, known: set[str]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        for n in names:
            while n and n not in known:
                n = n.rpartition(".")[0]
            if n.startswith("flexsync"):
                found.add(n)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    edges = {}
    for name, path in mods.items():
        targets = imports(path, known) - {name}
        # importing a submodule runs its package's __init__: not an edge worth a cycle
        edges[name] = {t for t in targets if not name.startswith(t + ".")}
    return edges


def test_every_import_points_to_the_same_layer_or_a_lower_one():
    upward = sorted(f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
                    for m, ts in graph().items() for t in ts
                    if m != "flexsync" and layer(t) > layer(m))
    assert upward == []


def test_no_module_import_cycle():
    edges, state, cycles = graph(), {}, []

    def visit(m: str, path: list[str]) -> None:
        state[m] = "open"
        for t in sorted(edges.get(m, ())):
            if state.get(t) == "open":
                cycles.append(" -> ".join(path[path.index(t):] + [t]))
            elif t not in state:
                visit(t, path + [t])
        state[m] = "done"

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_the_layer_map_covers_every_module():
    assert all(layer(m) >= 0 for m in modules())
