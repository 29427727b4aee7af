"""Env-steps per second of the batched AAM environment against the single-environment
PettingZoo wrapper (issue 22).  Scenario for N vehicles (``scaled_config``): two fleets of
N/2 vehicles each (S / M / L as 1/3 each, the remainder S), V = max(6, N/5) random vertiports
on a square whose side grows with sqrt(V) (10 km at V = 6), 0.1·N requests per minute, patience
10, 4 serve slots, comm_1hop observations.  Both environments play uniformly random *feasible*
actions (Gumbel-argmax over the action mask, drawn outside the timed region); single:
``AamParallelEnv`` one step at a time, batched: ``BatchedAam`` over B copies per call in
blocks of ``block_size(N)`` copies (about 640 000 vehicle pairs per block: 1024 copies at
N = 10, 64 at N = 100, 1 at N = 1000).  ``--warmup`` untimed steps first (requests build up
to their steady state over the patience), then ``--steps`` timed steps (``--single-steps``
for the single environment); env-steps/s = B × steps / seconds spent in ``step``.  The
process CPU seconds spent in ``step`` are recorded too: the CPU-time speed-up does not move
with other users' load on a shared machine the way the wall-clock one does.

    python packages/swarmgames/benchmarks/aam_batched.py --sizes 10 100 1000 \\
        --batches 1 64 1024 --out benchmarks/results/aam-batched.md
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from swarmgames.core.config import from_dict
from swarmgames.fleet.batched import BatchedAam
from swarmgames.fleet.config import AamConfig
from swarmgames.fleet.parallel import AamParallelEnv


def scaled_config(n: int, steps: int) -> AamConfig:
    """The benchmark scenario with N vehicles (see the module docstring)."""
    per = n // 2
    m = per // 3
    comp = [per - 2 * m, m, m]
    v = max(6, n // 5)
    return from_dict(AamConfig, {
        "steps": steps, "fleets": [comp, list(comp)],
        "network": {"n_vertiports": v, "side_km": 10.0 * float(np.sqrt(v / 6)), "n_depots": 2,
                    "min_separation_km": 1.0},
        "demand": {"rate": 0.1 * n, "patience": 10}, "max_requests": 4,
        "topology": "comm_1hop"})


def block_size(n: int) -> int:
    """Copies per block: B·N² pair arrays of about 640 000 entries (5 MB of float64)."""
    return int(np.clip(640_000 // (n * n), 1, 1024))


def feasible(rng: np.random.Generator, masks: np.ndarray) -> np.ndarray:
    """A uniformly random feasible action per row of the boolean masks (..., A)."""
    return np.argmax(np.where(masks, rng.random(masks.shape), -1.0), axis=-1)


def single_rate(n: int, warmup: int, steps: int) -> tuple[float, float]:
    """(env-steps per wall second, per CPU second) of one AamParallelEnv."""
    env = AamParallelEnv(scaled_config(n, warmup + steps + 1))
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    spent = cpu = 0.0
    for k in range(warmup + steps):
        masks = np.stack([obs[a]["action_mask"] for a in env.possible_agents]).astype(bool)
        acts = dict(zip(env.possible_agents, feasible(rng, masks).tolist(), strict=True))
        t0, c0 = time.perf_counter(), time.process_time()
        obs, *_ = env.step(acts)
        if k >= warmup:
            spent += time.perf_counter() - t0
            cpu += time.process_time() - c0
    return steps / spent, steps / cpu


def batched_rate(n: int, b: int, warmup: int, steps: int) -> tuple[float, float]:
    """(env-steps per wall second, per CPU second) of BatchedAam over B copies."""
    env = BatchedAam(scaled_config(n, warmup + steps + 1), range(b), block=block_size(n))
    rng = np.random.default_rng(0)
    spent = cpu = 0.0
    for k in range(warmup + steps):
        acts = feasible(rng, env.action_masks())
        t0, c0 = time.perf_counter(), time.process_time()
        env.step(acts)
        if k >= warmup:
            spent += time.perf_counter() - t0
            cpu += time.process_time() - c0
    return b * steps / spent, b * steps / cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    ap.add_argument("--warmup", type=int, default=12)
    ap.add_argument("--steps", type=int, default=5, help="timed batched steps")
    ap.add_argument("--single-steps", type=int, default=40, help="timed single-env steps")
    ap.add_argument("--max-cells", type=float, default=1e8,
                    help="skip batched cells with B·N² above this (memory and time)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    lines = ["# Batched AAM environment: env-steps per second", "",
             f"Command: `python packages/swarmgames/benchmarks/aam_batched.py --sizes "
             f"{' '.join(map(str, a.sizes))} --batches {' '.join(map(str, a.batches))} "
             f"--warmup {a.warmup} --steps {a.steps} --single-steps {a.single_steps} "
             f"--max-cells {a.max_cells:g} --out {a.out}` "
             "(OMP_NUM_THREADS=1, shared 2-core CPU)", "",
             "Scenario and timing: the docstring of `packages/swarmgames/benchmarks/"
             "aam_batched.py`.  Batched copy b equals `AamParallelEnv(cfg, b)` step for step "
             "(`tests/fleet/test_batched_aam.py`).", "",
             "Env-steps per wall-clock second; the last two columns are the speed-ups at "
             "the largest B on wall-clock and on process CPU time, and the load average "
             "(1 min) is read before and after each row.", "",
             "| N | vertiports | single env (AamParallelEnv) | " + " | ".join(
                 f"batched B={b}" for b in a.batches) + f" | speed-up at B={a.batches[-1]} "
             "(wall) | speed-up (CPU time) | load before / after |",
             "|" + "---|" * (len(a.batches) + 6)]
    skipped = []
    for n in a.sizes:
        load0 = os.getloadavg()[0]
        s, s_cpu = single_rate(n, a.warmup, a.single_steps)
        rates, cpus = [], []
        for b in a.batches:
            if b * n * n > a.max_cells:
                rates.append(float("nan"))
                cpus.append(float("nan"))
                skipped.append((n, b))
                continue
            r, c = batched_rate(n, b, a.warmup, a.steps)
            rates.append(r)
            cpus.append(c)
        load1 = os.getloadavg()[0]
        print(n, round(s, 2), [round(r, 1) for r in rates], round(s_cpu, 2),
              [round(r, 1) for r in cpus], load0, load1, flush=True)
        cell = lambda r: "not run" if np.isnan(r) else f"{r:.1f}"  # noqa: E731
        up = "—" if np.isnan(rates[-1]) else f"{rates[-1] / s:.1f}x"
        up_cpu = "—" if np.isnan(cpus[-1]) else f"{cpus[-1] / s_cpu:.1f}x"
        v = scaled_config(n, 2).network.n_vertiports
        lines.append(f"| {n} | {v} | {s:.2f} | " + " | ".join(cell(r) for r in rates)
                     + f" | {up} | {up_cpu} | {load0:.2f} / {load1:.2f} |")
    if skipped:
        lines += ["", "Not run (B·N² above --max-cells): " + ", ".join(
            f"N = {n}, B = {b}" for n, b in skipped) + ".  The vehicle observations alone are "
            "B·N²·5 float32 values (20 GB at N = 1000, B = 1024), and at N = 1000 the step "
            "time grows linearly in B beyond one copy per block."]
    a.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
