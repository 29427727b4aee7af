"""Env-steps per second of the batched flocking environment against the single-environment
PettingZoo wrapper (issue 22).  Both step the default flocking scenario with uniformly random
labels (infeasible ones are replaced by the unary argmax in both); single: ``FlockParallelEnv``
one step at a time; batched: ``BatchedFlock`` over B copies per call.  Env-steps/s = B ×
steps / seconds (reset excluded).

    python packages/swarmgames/benchmarks/flock_batched.py --sizes 10 100 --batches 1 64 1024 \\
        --out benchmarks/results/flock-batched.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from swarmgames.core.config import from_dict
from swarmgames.games.batched import BatchedFlock
from swarmgames.games.config import FlockConfig
from swarmgames.games.parallel import FlockParallelEnv


def single_rate(n: int, steps: int) -> float:
    env = FlockParallelEnv(from_dict(FlockConfig, {"n_agents": n, "steps": steps + 1}))
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step({a: int(rng.integers(env.sim.n_labels)) for a in env.agents})
    return steps / (time.perf_counter() - t0)


def batched_rate(n: int, b: int, steps: int) -> float:
    env = BatchedFlock(from_dict(FlockConfig, {"n_agents": n, "steps": steps + 1}), range(b))
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step(rng.integers(env.n_labels, size=(b, n)))
    return b * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    ap.add_argument("--steps", type=int, default=5, help="batched steps per measurement")
    ap.add_argument("--single-steps", type=int, default=40)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    lines = ["# Batched flocking environment: env-steps per second", "",
             f"Command: `python packages/swarmgames/benchmarks/flock_batched.py --sizes "
             f"{' '.join(map(str, a.sizes))} --batches {' '.join(map(str, a.batches))} "
             f"--steps {a.steps} --single-steps {a.single_steps} --out {a.out}` "
             "(OMP_NUM_THREADS=1, shared 2-core CPU)", "",
             "| N | single env (FlockParallelEnv) | " + " | ".join(
                 f"batched B={b}" for b in a.batches) + f" | speed-up at B={a.batches[-1]} |",
             "|" + "---|" * (len(a.batches) + 3)]
    for n in a.sizes:
        s = single_rate(n, a.single_steps)
        rates = [batched_rate(n, b, a.steps) for b in a.batches]
        print(n, round(s, 1), [round(r, 1) for r in rates], flush=True)
        lines.append(f"| {n} | {s:.1f} | " + " | ".join(f"{r:.1f}" for r in rates)
                     + f" | {rates[-1] / s:.1f}x |")
    a.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
