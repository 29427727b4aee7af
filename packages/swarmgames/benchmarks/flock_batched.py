"""Env-steps per second of the batched flocking environment against the single-environment
PettingZoo wrapper (issue 22).  Both step the default flocking scenario with uniformly random
labels (infeasible ones are replaced by the unary argmax in both); single: ``FlockParallelEnv``
one step at a time; batched: ``BatchedFlock`` over B copies per call.  Env-steps/s = B ×
steps / seconds (reset excluded).

``--vmas`` adds, in the same run (same machine, same load), VMAS 1.5.2's own ``flocking``
scenario on the CPU with N agents, B vectorised environments and random continuous actions
(``pip install vmas==1.5.2``, the ``bench`` extra).  It is a different simulator (continuous
physics with collisions, lidar sensors, obstacles, a scripted target), so the rows compare
throughput of a batched multi-agent simulator of the same size, not the same dynamics.

    python packages/swarmgames/benchmarks/flock_batched.py --sizes 10 100 --batches 1 64 1024 \\
        --vmas --out benchmarks/results/flock-batched.md
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
    env.step(rng.integers(env.n_labels, size=(b, n)))   # warm-up, untimed
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step(rng.integers(env.n_labels, size=(b, n)))
    return b * steps / (time.perf_counter() - t0)


def vmas_rate(n: int, b: int, steps: int) -> float:
    """Env-steps/s of VMAS's ``flocking`` scenario (N agents, B envs, CPU, one torch thread)."""
    import torch
    import vmas

    torch.set_num_threads(1)
    env = vmas.make_env(scenario="flocking", num_envs=b, device="cpu",
                        continuous_actions=True, n_agents=n, seed=0)
    env.reset()
    gen = torch.Generator().manual_seed(0)
    acts = [[2 * torch.rand((b, 2), generator=gen) - 1 for _ in env.agents]
            for _ in range(steps)]
    env.step([torch.zeros((b, 2)) for _ in env.agents])   # warm-up, untimed
    t0 = time.perf_counter()
    for k in range(steps):
        env.step(acts[k])
    return b * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    ap.add_argument("--steps", type=int, default=5, help="batched steps per measurement")
    ap.add_argument("--single-steps", type=int, default=40)
    ap.add_argument("--vmas", action="store_true", help="add VMAS flocking rows")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    lines = ["# Batched flocking environment: env-steps per second", "",
             f"Command: `python packages/swarmgames/benchmarks/flock_batched.py --sizes "
             f"{' '.join(map(str, a.sizes))} --batches {' '.join(map(str, a.batches))} "
             f"--steps {a.steps} --single-steps {a.single_steps}"
             + (" --vmas" if a.vmas else "") + f" --out {a.out}` "
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
    if a.vmas:
        lines += ["", "VMAS 1.5.2 `flocking` scenario, same machine and run (env-steps/s):", "",
                  "| N | " + " | ".join(f"VMAS B={b}" for b in a.batches) + " |",
                  "|" + "---|" * (len(a.batches) + 1)]
        for n in a.sizes:
            rates = [vmas_rate(n, b, a.steps) for b in a.batches]
            print("vmas", n, [round(r, 1) for r in rates], flush=True)
            lines.append(f"| {n} | " + " | ".join(f"{r:.3g}" for r in rates) + " |")
    a.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
