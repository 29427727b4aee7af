"""Import direction of the package (README "Architecture"): ``core`` is the bottom layer,
``games`` and ``fleet`` are siblings above it that never import each other, and ``runner`` /
``compare`` / ``cli`` sit on top.  Every ``import`` in the source, including ones inside
functions, must point to the same layer or a lower one, and no chain of imports may close a
cycle.  The checks are pure functions of an import graph, so they are also run on small
hand-made graphs that break each rule (the test can fail)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "swarmgames"

# top-level part of a module name → layer; equal numbers are siblings
LAYERS = {"swarmgames": 0, "core": 0, "games": 1, "fleet": 1,
          "runner": 2, "compare": 2, "cli": 2}
SIBLINGS_APART = {("games", "fleet"), ("fleet", "games")}
# simulators are driven by controllers/policies and must not import them (only the interface)
SIMULATORS = {"swarmgames.games.flock", "swarmgames.games.coco", "swarmgames.fleet.sim"}
SIM_MAY_IMPORT = {"swarmgames.games.controllers.base"}
POLICY_PACKAGES = ("swarmgames.games.controllers", "swarmgames.fleet.policy",
                   "swarmgames.fleet.heuristics", "swarmgames.fleet.hetgat",
                   "swarmgames.fleet.train")


def part(module: str) -> str:
    """``swarmgames.games.flock`` → ``games``; the package root itself → ``swarmgames``."""
    bits = module.split(".")
    return bits[1] if len(bits) > 1 else bits[0]


def source_modules() -> dict[str, Path]:
    """Dotted module name → file for every module under ``src/swarmgames``."""
    out = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        bits = list(rel.parts)
        if bits[-1] == "__init__":
            bits = bits[:-1]
        out[".".join(bits)] = path
    return out


def imported(path: Path, module: str, known: set[str]) -> set[str]:
    """Package modules imported anywhere in ``path`` (absolute and relative imports); a name
    imported from a package resolves to its submodule when there is one."""
    is_pkg = path.name == "__init__.py"
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                stem = ".".join(base[: len(base) - node.level + 1] + (
                    [node.module] if node.module else []))
            else:
                stem = node.module or ""
            names = [f"{stem}.{a.name}" for a in node.names] + [stem]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = source_modules()
    known = set(mods)
    return {m: imported(p, m, known) for m, p in mods.items()}


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports that point up a layer or across the games/fleet sibling boundary."""
    bad = []
    for src, targets in graph.items():
        for dst in targets:
            a, b = part(src), part(dst)
            if LAYERS[b] > LAYERS[a] or (a, b) in SIBLINGS_APART:
                bad.append(f"{src} -> {dst}")
    return sorted(bad)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[m0, m1, ..., m0]``, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (cyc := visit(n)):
                return cyc
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cyc := visit(m)):
            return cyc
    return None


def simulator_violations(graph: dict[str, set[str]]) -> list[str]:
    """Simulator modules importing a controller or policy (they take one as an argument)."""
    return sorted(f"{s} -> {d}" for s in SIMULATORS & set(graph) for d in graph[s]
                  if d not in SIM_MAY_IMPORT and d.startswith(POLICY_PACKAGES))


def test_every_module_has_a_layer():
    assert {part(m) for m in source_modules()} <= set(LAYERS)


def test_imports_point_down_and_siblings_stay_apart():
    assert layer_violations(import_graph()) == []


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_simulators_do_not_import_controllers_or_policies():
    graph = import_graph()
    assert SIMULATORS <= set(graph)
    assert simulator_violations(graph) == []


def test_the_checks_catch_upward_sideways_cyclic_and_simulator_imports():
    """Each rule flags a graph that breaks it (so the real-graph tests can fail)."""
    up = {"swarmgames.core.rng": {"swarmgames.games.flock"}, "swarmgames.games.flock": set()}
    assert layer_violations(up) == ["swarmgames.core.rng -> swarmgames.games.flock"]
    side = {"swarmgames.fleet.sim": {"swarmgames.games.stage_game"}}
    assert layer_violations(side) == ["swarmgames.fleet.sim -> swarmgames.games.stage_game"]
    top = {"swarmgames.games.build": {"swarmgames.runner"}}
    assert layer_violations(top) == ["swarmgames.games.build -> swarmgames.runner"]
    cyc = {"swarmgames.games.a": {"swarmgames.games.b"}, "swarmgames.games.b":
           {"swarmgames.games.c"}, "swarmgames.games.c": {"swarmgames.games.a"}}
    assert find_cycle(cyc) == ["swarmgames.games.a", "swarmgames.games.b",
                               "swarmgames.games.c", "swarmgames.games.a"]
    sim = {"swarmgames.games.flock": {"swarmgames.games.controllers.flocking",
                                      "swarmgames.games.controllers.base"}}
    assert simulator_violations(sim) == [
        "swarmgames.games.flock -> swarmgames.games.controllers.flocking"]


def test_relative_and_function_level_imports_are_seen(tmp_path):
    pkg = tmp_path / "swarmgames" / "games"
    pkg.mkdir(parents=True)
    f = pkg / "x.py"
    f.write_text("def g():\n    from ..fleet import sim\n    import swarmgames.core.rng\n")
    known = {"swarmgames.fleet.sim", "swarmgames.fleet", "swarmgames.core.rng"}
    assert imported(f, "swarmgames.games.x", known) == {
        "swarmgames.fleet.sim", "swarmgames.fleet", "swarmgames.core.rng"}
