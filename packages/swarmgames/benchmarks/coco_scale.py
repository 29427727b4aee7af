"""CoCo stage cost against swarm size: seconds per stage and peak resident memory.

Each N runs in its own process (peak RSS is per process).  The scenario is the default CoCo
config with ``n_uavs = N`` (8 UAVs become N; 5 UEs, 1 km², all UAVs launched within ±30 m of
the centre, so at the first stages every UAV neighbours every other one: the densest case).
One stage = ``CocoSim.step()``: ROI fit, links, neighbourhoods, stage-game tables, mean-field
VI (graph-colouring schedule, ≤ 20 rounds), the default settling check, certification
(regrets) and all metrics.  ``stage_cpu_s_max`` is the process CPU time of the slowest stage
(wall seconds on a shared machine also count other users' load).

    python packages/swarmgames/benchmarks/coco_scale.py --sizes 8 100 1000 --stages 2 \\
        --out benchmarks/results/coco-scale.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def one(n: int, stages: int, seed: int) -> dict[str, float]:
    from swarmgames.core.config import from_dict
    from swarmgames.games.build import make_coco_sim
    from swarmgames.games.config import CocoConfig

    t0 = time.perf_counter()
    sim = make_coco_sim(from_dict(CocoConfig, {"n_uavs": n, "steps": stages}), seed)
    setup = time.perf_counter() - t0
    per, cpu = [], []
    for _ in range(stages):
        t0, c0 = time.perf_counter(), time.process_time()
        m = sim.step()
        per.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"n": n, "setup_s": setup, "stage_s_first": per[0], "stage_s_max": max(per),
            "stage_s_mean": sum(per) / len(per), "stage_cpu_s_max": max(cpu),
            "rounds_last": m.get("rounds", float("nan")),
            "mean_degree_last": m["mean_degree"],
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 100, 1000])
    ap.add_argument("--stages", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one is not None:
        print(json.dumps(one(a.one, a.stages, a.seed)))
        return
    rows = []
    load_before = os.getloadavg()
    for n in a.sizes:
        res = subprocess.run([sys.executable, __file__, "--one", str(n), "--stages",
                              str(a.stages), "--seed", str(a.seed)], capture_output=True,
                             text=True, check=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    load_after = os.getloadavg()
    if a.out:
        keys = list(rows[0])
        lines = ["# CoCo stage cost against N", "",
                 f"Command: `python packages/swarmgames/benchmarks/coco_scale.py --sizes "
                 f"{' '.join(map(str, a.sizes))} --stages {a.stages} --out {a.out}` "
                 "(OMP_NUM_THREADS=1, shared 2-core CPU)", "",
                 "Load average (1/5/15 min) on the shared 2 cores: "
                 f"{' / '.join(f'{x:.2f}' for x in load_before)} before, "
                 f"{' / '.join(f'{x:.2f}' for x in load_after)} after.", "",
                 "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(f"{r[k]:.4g}" for k in keys) + " |" for r in rows]
        a.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
