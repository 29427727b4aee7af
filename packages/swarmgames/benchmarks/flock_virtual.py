"""Exact against virtual mean-neighbourhood best response on a time-varying flocking
scenario (``--config``, default ``configs/flock_varying.yaml``; ``configs/flock_obstacles.yaml``
adds obstacles): collisions between agents and with obstacles, minimum distance, how much the
network varies (λ2 and mean degree over time, connected fraction, how often the graph splits
or re-joins, the most components), ε of the executed profiles in the true game, and the
solver's time per stage (stage-game construction + best-response rounds, the controller time
``FlockSim`` records; certification is not in it).  ``--plot`` draws λ2 and the number of
components over time for the first seed.

    python packages/swarmgames/benchmarks/flock_virtual.py --sizes 32 100 --seeds 0 1 2 \\
        --out benchmarks/results/flock-virtual.md
    python packages/swarmgames/benchmarks/flock_virtual.py --config \\
        packages/swarmgames/configs/flock_obstacles.yaml --sizes 32 100 --seeds 0 1 2 3 4 \\
        --out benchmarks/results/flock-obstacles.md --plot benchmarks/results/flock-obstacles.png
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from swarmgames.core.render import save_figure
from swarmgames.core.stats import mean_t_ci
from swarmgames.games.build import make_flock_sim
from swarmgames.games.flock import summarise_flock
from swarmgames.runner import load_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "flock_varying.yaml"
KEYS = ["collisions_total", "obstacle_collisions_total", "min_distance", "lambda2_min",
        "lambda2_median", "lambda2_max", "degree_min", "degree_max", "connected_fraction",
        "splits_and_joins", "components_max", "epsilon_mean", "epsilon_max",
        "solve_ms_per_stage", "wall_s"]


def run(n: int, seed: int, pairwise: str, steps: int | None,
        config: Path = CONFIG) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Summary of one run and its per-step history."""
    overrides = [f"flock.n_agents={n}", f"flock.solver.pairwise={pairwise}"]
    if steps:
        overrides.append(f"flock.steps={steps}")
    cfg = load_config(config, overrides)[0].flock
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
    conn = np.array([x["connected"] for x in h])
    return {"collisions_total": s["collisions_total"],
            "obstacle_collisions_total": s["obstacle_collisions_total"],
            "min_distance": s["min_distance"],
            "lambda2_min": l2.min(), "lambda2_median": float(np.median(l2)),
            "lambda2_max": l2.max(), "degree_min": deg.min(), "degree_max": deg.max(),
            "connected_fraction": s["connected_fraction"],
            "splits_and_joins": float(np.abs(np.diff(conn)).sum()),
            "components_max": max(x["components"] for x in h), "epsilon_mean": eps.mean(),
            "epsilon_max": eps.max(), "solve_ms_per_stage": float(solve.mean()),
            "wall_s": wall}, h


def plot(histories: dict[tuple[int, str], list[dict[str, float]]], seed: int,
         path: Path) -> None:
    """λ2 and components over time, one column per N, exact and virtual overlaid."""
    import matplotlib.pyplot as plt

    sizes = sorted({n for n, _ in histories})
    fig, axes = plt.subplots(2, len(sizes), figsize=(5 * len(sizes), 5.5), squeeze=False,
                             sharex=True)
    for col, n in enumerate(sizes):
        for pw, style in (("exact", "-"), ("virtual", "--")):
            h = histories[(n, pw)]
            t = [x["t"] for x in h]
            axes[0, col].plot(t, [x["lambda2"] for x in h], style, label=pw)
            axes[1, col].plot(t, [x["components"] for x in h], style, label=pw)
        axes[0, col].set_title(f"N = {n}, seed {seed}")
        axes[0, col].set_ylabel("λ2 (algebraic connectivity)")
        axes[1, col].set_ylabel("connected components")
        axes[1, col].set_xlabel("t (s)")
        axes[0, col].legend()
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 100])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--plot", type=Path, default=None)
    a = ap.parse_args()
    cfg_arg = "" if a.config == CONFIG else f" --config {a.config}"
    lines = [f"# Exact vs virtual mean-neighbourhood solver, time-varying flocking "
             f"({a.config.stem})", "",
             f"Command: `python packages/swarmgames/benchmarks/flock_virtual.py{cfg_arg} "
             f"--sizes {' '.join(map(str, a.sizes))} --seeds {' '.join(map(str, a.seeds))}"
             + (f" --steps {a.steps}" if a.steps else "") + f" --out {a.out}"
             + (f" --plot {a.plot}" if a.plot else "") + "` "
             "(OMP_NUM_THREADS=1, shared 2-core CPU). Mean ± Student-t 95% CI over seeds.", "",
             "| N | solver | " + " | ".join(KEYS) + " |", "|" + "---|" * (len(KEYS) + 2)]
    per_seed = []
    first: dict[tuple[int, str], list[dict[str, float]]] = {}
    load0 = os.getloadavg()
    speed = []
    for n in a.sizes:
        # exact and virtual alternate seed by seed, so a change in the machine's load hits
        # both solvers alike (the per-seed speed-up is a paired ratio)
        res: dict[str, list[dict[str, float]]] = {"exact": [], "virtual": []}
        for s in a.seeds:
            for pw in ("exact", "virtual"):
                r, h = run(n, s, pw, a.steps, a.config)
                res[pw].append(r)
                if s == a.seeds[0]:
                    first[(n, pw)] = h
                print(n, pw, s, {k: round(v, 4) for k, v in r.items()}, flush=True)
        for pw in ("exact", "virtual"):
            rows = res[pw]
            for s, r in zip(a.seeds, rows, strict=True):
                per_seed.append(f"| {n} | {pw} | {s} | " + " | ".join(
                    f"{r[k]:.4g}" for k in KEYS) + " |")
            cells = [mean_t_ci([r[k] for r in rows]) for k in KEYS]
            lines.append(f"| {n} | {pw} | " + " | ".join(f"{m:.4g} ± {h:.2g}"
                                                         for m, h in cells) + " |")
        ratio = [e["solve_ms_per_stage"] / v["solve_ms_per_stage"]
                 for e, v in zip(res["exact"], res["virtual"], strict=True)]
        m, h = mean_t_ci(ratio)
        speed.append(f"| {n} | {m:.2f} ± {h:.2g} | " + ", ".join(f"{x:.2f}" for x in ratio)
                     + " |")
    load1 = os.getloadavg()
    lines += ["", "Solver speed-up, exact ÷ virtual solve ms per stage (paired per seed, mean "
              "± Student-t 95% CI):", "", "| N | speed-up | per seed |", "|---|---|---|",
              *speed, "", "Load average (1/5/15 min) on the shared 2 cores: "
              f"{' / '.join(f'{x:.2f}' for x in load0)} before, "
              f"{' / '.join(f'{x:.2f}' for x in load1)} after."]
    lines += ["", "Per seed:", "", "| N | solver | seed | " + " | ".join(KEYS) + " |",
              "|" + "---|" * (len(KEYS) + 3)] + per_seed
    a.out.write_text("\n".join(lines) + "\n")
    if a.plot:
        plot(first, a.seeds[0], a.plot)


if __name__ == "__main__":
    main()
