"""Exact against virtual mean-neighbourhood best response on the time-varying flocking
scenario (``configs/flock_varying.yaml``): collisions, minimum distance, how much the network
varies (λ2 and mean degree over time, connected fraction), ε of the executed profiles in the
true game, and the solver's time per stage (stage-game construction + best-response rounds,
the controller time ``FlockSim`` records; certification is not in it).

    python packages/swarmgames/benchmarks/flock_virtual.py --sizes 32 100 --seeds 0 1 2 \\
        --out benchmarks/results/flock-virtual.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from swarmgames.core.stats import mean_t_ci
from swarmgames.games.build import make_flock_sim
from swarmgames.games.flock import summarise_flock
from swarmgames.runner import load_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "flock_varying.yaml"
KEYS = ["collisions_total", "min_distance", "lambda2_min", "lambda2_median", "lambda2_max",
        "degree_min", "degree_max", "connected_fraction", "epsilon_mean", "epsilon_max",
        "solve_ms_per_stage", "wall_s"]


def run(n: int, seed: int, pairwise: str, steps: int | None) -> dict[str, float]:
    overrides = [f"flock.n_agents={n}", f"flock.solver.pairwise={pairwise}"]
    if steps:
        overrides.append(f"flock.steps={steps}")
    cfg = load_config(CONFIG, overrides)[0].flock
    sim = make_flock_sim(cfg, seed)
    t0 = time.perf_counter()
    sim.run()
    wall = time.perf_counter() - t0
    h = sim.history
    s = summarise_flock(h)
    l2 = np.array([x["lambda2"] for x in h])
    deg = np.array([x["mean_degree"] for x in h])
    eps = np.array([x["epsilon"] for x in h])
    solve = np.array([x["solve_ms_per_agent"] for x in h]) * n
    return {"collisions_total": s["collisions_total"], "min_distance": s["min_distance"],
            "lambda2_min": l2.min(), "lambda2_median": float(np.median(l2)),
            "lambda2_max": l2.max(), "degree_min": deg.min(), "degree_max": deg.max(),
            "connected_fraction": s["connected_fraction"], "epsilon_mean": eps.mean(),
            "epsilon_max": eps.max(), "solve_ms_per_stage": float(solve.mean()),
            "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 100])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    lines = ["# Exact vs virtual mean-neighbourhood solver, time-varying flocking", "",
             f"Command: `python packages/swarmgames/benchmarks/flock_virtual.py --sizes "
             f"{' '.join(map(str, a.sizes))} --seeds {' '.join(map(str, a.seeds))}"
             + (f" --steps {a.steps}" if a.steps else "") + f" --out {a.out}` "
             "(OMP_NUM_THREADS=1, shared 2-core CPU). Mean ± Student-t 95% CI over seeds.", "",
             "| N | solver | " + " | ".join(KEYS) + " |", "|" + "---|" * (len(KEYS) + 2)]
    per_seed = []
    for n in a.sizes:
        for pw in ("exact", "virtual"):
            rows = [run(n, s, pw, a.steps) for s in a.seeds]
            for s, r in zip(a.seeds, rows, strict=True):
                per_seed.append(f"| {n} | {pw} | {s} | " + " | ".join(
                    f"{r[k]:.4g}" for k in KEYS) + " |")
                print(n, pw, s, {k: round(v, 4) for k, v in r.items()}, flush=True)
            cells = [mean_t_ci([r[k] for r in rows]) for k in KEYS]
            lines.append(f"| {n} | {pw} | " + " | ".join(f"{m:.4g} ± {h:.2g}"
                                                         for m, h in cells) + " |")
    lines += ["", "Per seed:", "", "| N | solver | seed | " + " | ".join(KEYS) + " |",
              "|" + "---|" * (len(KEYS) + 3)] + per_seed
    a.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
