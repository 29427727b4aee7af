"""Choose the obstacle scenario's safety weights on validation seeds (issue 22).

Every (w_separation, w_obstacle) pair of the grid runs ``configs/flock_obstacles.yaml`` at
each N on the validation seeds (disjoint from the evaluation seeds 0-4 of
``flock_virtual.py``) with the virtual solver (it plays the same trajectories as the exact
one, faster) and without certification (ε is not needed here and does not change the
trajectory).  Choice rule, fixed before the runs: fewest collisions (agent pairs closer than
d_safe plus agents within d_safe/2 of an obstacle surface, summed over all runs); ties broken
by the larger worst-case safety margin, min over runs of min(min distance − d_safe,
min clearance − d_safe/2); then by the smaller weights.

    python packages/swarmgames/benchmarks/flock_obstacle_tuning.py --sizes 32 100 \\
        --seeds 10 11 12 13 14 15 16 17 18 19 --w-separation 0.8 1.6 3.2 \\
        --w-obstacle 2 4 --jobs 2 --out benchmarks/results/flock-obstacles-tuning.md
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from swarmgames.games.build import make_flock_sim
from swarmgames.games.flock import summarise_flock
from swarmgames.runner import load_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "flock_obstacles.yaml"


def one(args: tuple) -> dict:
    n, seed, ws, wo, config, extra = args
    over = [f"flock.n_agents={n}", "flock.solver.pairwise=virtual", "flock.certify=false",
            f"flock.payoff.w_separation={ws}", f"flock.payoff.w_obstacle={wo}", *extra]
    cfg = load_config(config, over)[0].flock
    sim = make_flock_sim(cfg, seed)
    sim.run()
    s = summarise_flock(sim.history)
    clear = min(h["obstacle_clearance"] for h in sim.history)
    conn = np.array([h["connected"] for h in sim.history])
    l2 = np.array([h["lambda2"] for h in sim.history])
    return {"n": n, "seed": seed, "ws": ws, "wo": wo,
            "collisions": s["collisions_total"], "obstacle_collisions":
            s["obstacle_collisions_total"], "min_distance": s["min_distance"],
            "min_clearance": clear,
            "margin": min(s["min_distance"] - cfg.d_safe_m, clear - cfg.d_safe_m / 2),
            "connected_fraction": float(conn.mean()), "lambda2_min": float(l2.min()),
            "lambda2_max": float(l2.max()),
            "goal_error": float(np.mean([h["goal_error"] for h in sim.history]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 100])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(10, 20)))
    ap.add_argument("--w-separation", type=float, nargs="+", default=[0.8, 1.6, 3.2])
    ap.add_argument("--w-obstacle", type=float, nargs="+", default=[2.0, 4.0])
    ap.add_argument("--set", nargs="*", default=[], help="extra dotted overrides")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--cache", type=Path, help="jsonl of finished runs (resume after a kill)")
    a = ap.parse_args()
    if set(a.seeds) & {0, 1, 2, 3, 4}:
        raise SystemExit("validation seeds must be disjoint from the evaluation seeds 0-4")
    load0 = os.getloadavg()
    grid = list(itertools.product(a.w_separation, a.w_obstacle))
    tasks = [(n, s, ws, wo, a.config, a.set) for ws, wo in grid for n in a.sizes
             for s in a.seeds]
    def key(n, seed, ws, wo, extra) -> str:
        return json.dumps([n, seed, ws, wo, list(extra)])

    done: dict[str, dict] = {}
    if a.cache and a.cache.exists():
        for line in a.cache.read_text().splitlines():
            x = json.loads(line)
            done[key(x["n"], x["seed"], x["ws"], x["wo"], x["set"])] = x
    todo = [t for t in tasks if key(*t[:4], t[5]) not in done]
    with ProcessPoolExecutor(a.jobs) as ex:
        for t, x in zip(todo, ex.map(one, todo), strict=True):
            x["set"] = list(t[5])
            done[key(*t[:4], t[5])] = x
            if a.cache:
                with a.cache.open("a") as f:
                    f.write(json.dumps(x) + "\n")
    res = [done[key(*t[:4], t[5])] for t in tasks]
    rows = []
    for ws, wo in grid:
        r = [x for x in res if x["ws"] == ws and x["wo"] == wo]
        per_n = {n: [x for x in r if x["n"] == n] for n in a.sizes}
        rows.append({"ws": ws, "wo": wo,
                     "bad": sum(x["collisions"] + x["obstacle_collisions"] for x in r),
                     "runs_bad": sum((x["collisions"] + x["obstacle_collisions"]) > 0
                                     for x in r),
                     "margin": min(x["margin"] for x in r),
                     "per_n": {n: (sum(x["collisions"] for x in v),
                                   sum(x["obstacle_collisions"] for x in v),
                                   sum(x["collisions"] + x["obstacle_collisions"] > 0
                                       for x in v),
                                   min(x["min_distance"] for x in v),
                                   min(x["min_clearance"] for x in v),
                                   float(np.mean([x["connected_fraction"] for x in v])),
                                   float(np.mean([x["lambda2_max"] - x["lambda2_min"]
                                                  for x in v])),
                                   float(np.mean([x["goal_error"] for x in v])))
                               for n, v in per_n.items()}})
    best = min(rows, key=lambda x: (x["bad"], -x["margin"], x["ws"], x["wo"]))
    for x in rows:
        print(x, flush=True)
    print("chosen:", best["ws"], best["wo"])
    if a.out:
        cmd = ("python packages/swarmgames/benchmarks/flock_obstacle_tuning.py --sizes "
               f"{' '.join(map(str, a.sizes))} --seeds {' '.join(map(str, a.seeds))} "
               f"--w-separation {' '.join(f'{w:g}' for w in a.w_separation)} --w-obstacle "
               f"{' '.join(f'{w:g}' for w in a.w_obstacle)}"
               + (f" --set {' '.join(a.set)}" if a.set else "")
               + f" --jobs {a.jobs} --out {a.out}")
        lines = ["# Obstacle scenario: safety weights chosen on validation seeds", "",
                 f"Command: `{cmd}` (OMP_NUM_THREADS=1, shared 2-core CPU)", "",
                 f"Load average before: {' / '.join(f'{x:.2f}' for x in load0)}; after: "
                 f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())}.  Validation seeds "
                 f"{a.seeds} (evaluation seeds 0-4 are not used here); virtual solver; "
                 "choice rule in the script's docstring.", "",
                 "| w_separation | w_obstacle | N | agent collisions (sum) | obstacle "
                 "collisions (sum) | runs with any | min distance (m) | min clearance (m) | "
                 "connected fraction (mean) | λ2 range (mean max − min) | goal error "
                 "(m/s, mean) |", "|" + "---|" * 11]
        for x in rows:
            for n, v in x["per_n"].items():
                lines.append(f"| {x['ws']:g} | {x['wo']:g} | {n} | {v[0]:g} | {v[1]:g} | "
                             f"{v[2]} / {len(a.seeds)} | {v[3]:.2f} | {v[4]:.2f} | "
                             f"{v[5]:.3f} | {v[6]:.1f} | {v[7]:.3f} |")
        lines += ["", f"Chosen: w_separation = {best['ws']:g}, w_obstacle = {best['wo']:g} "
                  f"({best['bad']:g} collisions over all validation runs, worst-case margin "
                  f"{best['margin']:.2f} m)."]
        per = ["", "Per run:", "", "| w_separation | w_obstacle | N | seed | collisions | "
               "obstacle collisions | min distance | min clearance | connected fraction |",
               "|" + "---|" * 9]
        per += [f"| {x['ws']:g} | {x['wo']:g} | {x['n']} | {x['seed']} | "
                f"{x['collisions']:g} | {x['obstacle_collisions']:g} | "
                f"{x['min_distance']:.2f} | {x['min_clearance']:.2f} | "
                f"{x['connected_fraction']:.3f} |" for x in res]
        a.out.write_text("\n".join(lines + per) + "\n")


if __name__ == "__main__":
    main()
