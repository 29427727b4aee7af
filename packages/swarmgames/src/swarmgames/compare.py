"""The comparison table of issue 10 (fixed seeds; not part of the unit tests).

Flocking: graphical-game controller vs greedy / Reynolds / VI as N grows to 100 (collisions,
rounds per stage, share of stages solved within K_max, ε).  CoCo: routing-based CoCo vs
distance-based neighbourhoods (k-nearest as in the ICRA-21 code, and a 150 m disk) vs Lloyd/CVT
(coverage, UE coverage, UE-to-UE connectivity through the backbone, backbone connectivity)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from swarmgames.core.config import from_dict, to_dict
from swarmgames.core.stats import markdown_table, mean_ci
from swarmgames.games.build import make_coco_sim, make_flock_sim
from swarmgames.games.coco import summarise_coco
from swarmgames.games.config import CocoConfig, FlockConfig
from swarmgames.games.flock import summarise_flock

FLOCK_METRICS = ["collisions_total", "min_distance", "order_last", "connected_fraction",
                 "rounds_mean", "rounds_max", "within_kmax_fraction", "epsilon_mean",
                 "solve_ms_per_agent"]
COCO_METRICS = ["coverage_last", "ue_coverage_mean", "ue_connectivity_last",
                "ue_connectivity_mean", "connected_fraction", "components_last", "rounds_mean",
                "epsilon_mean"]


def flock_variants(sizes: list[int]) -> dict[str, FlockConfig]:
    """Controller × N grid for the flocking half of the table."""
    out = {}
    for n in sizes:
        for ctrl in ("game", "greedy", "reynolds"):
            out[f"flock {ctrl} N={n}"] = FlockConfig(n_agents=n, controller=ctrl)
        if n == sizes[0]:
            out[f"flock vi N={n}"] = FlockConfig(n_agents=n, controller="vi")
    return out


def coco_variants() -> dict[str, CocoConfig]:
    """Neighbourhood / controller variants for the CoCo half of the table.  The VI variants
    execute the VI mode freely (``settle: off``), as when this table was made; the default
    ``settle: anneal`` and the communication-aware baselines are compared on held-out seeds by
    ``benchmarks/coco_baselines.py``."""
    base = CocoConfig(settle="off")
    return {
        "coco routing (hop<=1)": base,
        "coco knn (K=3)": replace(base, comm=from_dict(type(base.comm), {"neighbourhood": "knn"})),
        "coco disk (150 m)": replace(base, comm=from_dict(type(base.comm),
                                                          {"neighbourhood": "disk"})),
        "lloyd / CVT": replace(base, controller="lloyd"),
    }


def compare(out: Path, flock_seeds: list[int], coco_seeds: list[int],
            sizes: list[int], flock_steps: int | None = None,
            coco_steps: int | None = None) -> str:
    """Run every variant on the given seeds; write ``comparison.md``/``.json``; return the md."""
    out.mkdir(parents=True, exist_ok=True)
    res_f: dict[str, Any] = {}
    for label, cfg in flock_variants(sizes).items():
        if flock_steps:
            cfg = replace(cfg, steps=flock_steps)
        rows = [summarise_flock(make_flock_sim(cfg, s).run()) for s in flock_seeds]
        res_f[label] = {m: mean_ci([r[m] for r in rows]) for m in FLOCK_METRICS}
        print(label, {m: round(v[0], 3) for m, v in res_f[label].items()}, flush=True)
    res_c: dict[str, Any] = {}
    for label, cfg in coco_variants().items():
        if coco_steps:
            cfg = replace(cfg, steps=coco_steps)
        rows = []
        for s in coco_seeds:
            sim = make_coco_sim(cfg, s)
            sim.run()
            rows.append(summarise_coco(sim.history, sim.initial))
        res_c[label] = {m: mean_ci([r[m] for r in rows]) for m in COCO_METRICS}
        print(label, {m: round(v[0], 3) for m, v in res_c[label].items()}, flush=True)
    md = (f"Flocking (seeds {flock_seeds}, mean ± 95% CI)\n\n"
          + markdown_table(res_f, FLOCK_METRICS)
          + f"\nCoCo coverage, 8 UAVs / 5 UEs (seeds {coco_seeds}, mean ± 95% CI)\n\n"
          + markdown_table(res_c, COCO_METRICS))
    (out / "comparison.md").write_text(md)
    (out / "comparison.json").write_text(json.dumps(
        {"flock": res_f, "coco": res_c, "flock_seeds": flock_seeds, "coco_seeds": coco_seeds,
         "flock_default": to_dict(FlockConfig()), "coco_default": to_dict(CocoConfig())},
        indent=2, default=str))
    return md
