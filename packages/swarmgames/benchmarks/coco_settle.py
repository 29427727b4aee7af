"""CoCo with stationary UEs: does J settle?  Runs the default CoCo scenario (8 UAVs, 5
stationary UEs, 200 stages) with each ``settle`` mode of ``--modes`` (default ``off``,
``on_cycle`` and ``anneal``) on the given seeds and writes a markdown table: per seed the
number of J drops over the last 50 stages, the largest drop, coverage and UE connectivity over
the last 50 stages, the stage at which ``on_cycle`` committed and the last stage at which the
swarm moved; then mean ± Student-t 95% CI.

    python packages/swarmgames/benchmarks/coco_settle.py --seeds 300 301 302 303 304 \\
        --out benchmarks/results/coco-settle-300.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from swarmgames.core.config import from_dict
from swarmgames.core.stats import mean_t_ci
from swarmgames.games.build import make_coco_sim
from swarmgames.games.config import CocoConfig


def run(seed: int, settle: str, steps: int, tail: int) -> dict[str, float]:
    sim = make_coco_sim(from_dict(CocoConfig, {"steps": steps, "settle": settle}), seed)
    commit = float("nan")
    t0 = time.perf_counter()
    for k in range(steps):
        sim.step()
        if np.isnan(commit) and getattr(sim.controller, "committed", False):
            commit = float(k)
    j = np.array([h["objective"] for h in sim.history])
    d = np.diff(j[-(tail + 1):])
    changed = np.flatnonzero(np.abs(np.diff(j)) > 1e-9)
    last = sim.history[-tail:]
    return {"J_drops_last": float((d < -1e-9).sum()), "largest_drop": float(max(0.0, -d.min())),
            "J_last": float(j[-1]), "coverage_last": float(np.mean([h["coverage"] for h in last])),
            "ue_connectivity_last": float(np.mean([h["ue_connectivity"] for h in last])),
            "commit_stage": commit,
            "last_change": float(changed[-1] + 1) if len(changed) else 0.0,
            "wall_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--tail", type=int, default=50)
    ap.add_argument("--modes", nargs="+", default=["off", "on_cycle", "anneal"])
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    keys = ["J_drops_last", "largest_drop", "J_last", "coverage_last", "ue_connectivity_last",
            "commit_stage", "last_change"]
    lines = ["| settle | seed | " + " | ".join(keys) + " |", "|" + "---|" * (len(keys) + 2)]
    summary = []
    for settle in a.modes:
        rows = []
        for s in a.seeds:
            r = run(s, settle, a.steps, a.tail)
            rows.append(r)
            lines.append(f"| {settle} | {s} | " + " | ".join(f"{r[k]:.4g}" for k in keys) + " |")
            print(settle, s, {k: round(v, 3) for k, v in r.items()}, flush=True)
        cells = []
        for k in keys:
            m, h = mean_t_ci([r[k] for r in rows])
            cells.append(f"{m:.3g} ± {h:.2g}")
        summary.append(f"| {settle} | mean ± t95 | " + " | ".join(cells) + " |")
    head = ["# CoCo settling with stationary UEs", "", "Command: `python "
            "packages/swarmgames/benchmarks/coco_settle.py --seeds "
            + " ".join(map(str, a.seeds)) + f" --steps {a.steps} --modes "
            + " ".join(a.modes) + f" --out {a.out}`", ""]
    a.out.write_text("\n".join(head + lines + summary) + "\n")


if __name__ == "__main__":
    main()
