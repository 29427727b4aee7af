"""Why top-k gradient compression misses dense quality on the Adam-trained transformer.

Trains the quality suite's transformer workload (4 workers, its budget and defaults) with
dense, top-k 10x of the gradient (error-fed) and top-k 10x of each worker's own Adam *update*
(DiLoCo with H = 1, outer lr 1, no outer momentum: the compression sits after the optimizer),
and records per step on rank 0: the size of the step the model took, ‖w_t − w_{t−1}‖, and the
mean of Adam's second moment v over the parameters. Writes a markdown table to stdout.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/adam_topk.py --seeds 0 1 2 \
        > benchmarks/results/adam-topk.md

The hypothesis it tests: a coordinate that top-k sends once in k steps reaches Adam as a burst
of about k accumulated gradients and then zeros, so v (the mean of g²) grows about k-fold,
√v about √k-fold, and the step Adam takes shrinks although the sum of what was sent equals
the sum of the gradients.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch

from flexsync.comm import Communicator
from flexsync.config import build_config
from flexsync.launch import run_local
from flexsync.quality import REGIMES, WORKLOADS
from flexsync.train.assemble import build_run
from flexsync.train.loop import RunState, evaluate, train_step

VARIANTS = {
    "dense": {"name": "dense"},
    "topk-10x (gradient)": {"name": "topk", "ratio": 0.1},
    "topk-10x of the Adam update": {"name": "diloco", "h": 1, "outer_lr": 1.0,
                                    "outer_momentum": 0.0,
                                    "compress": {"ratio": 0.1, "index": "star"}},
}


def _worker(tree: dict) -> dict:
    cfg = build_config(tree)
    run = build_run(cfg, Communicator())
    st = RunState()
    params = list(run.model.parameters())
    steps, v_means = [], []
    total = cfg.steps
    while st.step < total:
        before = torch.cat([p.detach().reshape(-1) for p in params])
        train_step(run, st)
        after = torch.cat([p.detach().reshape(-1) for p in params])
        steps.append(float((after - before).norm()))
        vs = [s["exp_avg_sq"].reshape(-1) for s in run.optimizer.state.values()
              if "exp_avg_sq" in s]
        v_means.append(float(torch.cat(vs).mean()) if vs else float("nan"))
    run.strategy.before_eval()
    ppl = evaluate(run.model, run.data, run.comm, cfg.batch_size, run.comm.device).perplexity
    run.strategy.after_eval()
    return {"steps": steps, "v": v_means, "ppl": ppl}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    w = WORKLOADS["transformer"]
    rows = []
    for name, strategy in VARIANTS.items():
        per_seed = []
        for seed in args.seeds:
            tree = {**w.keys, "seed": seed, "workers": args.workers, "strategy": strategy,
                    "progress": False, "network": REGIMES["bw-100mbit"]}
            out = run_local(_worker, args.workers, (tree,), timeout_s=300)[0]
            per_seed.append(out)
        late = [statistics.mean(o["steps"][100:]) for o in per_seed]
        early = [statistics.mean(o["steps"][20:50]) for o in per_seed]
        v = [o["v"][-1] for o in per_seed]
        rows.append((name, early, late, v, [o["ppl"] for o in per_seed]))
    dense_early, dense_late, dense_v = rows[0][1], rows[0][2], rows[0][3]
    print("# Top-k compression under Adam: the step the model takes\n")
    print(f"`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/adam_topk.py --seeds "
          f"{' '.join(map(str, args.seeds))}`\n")
    print(f"Transformer workload of the quality suite, {args.workers} workers, seeds "
          f"{args.seeds}. Step size = ‖w_t − w_(t−1)‖ on rank 0, averaged over steps 20–49 "
          "(after warm-up) and 100–149; v = mean of Adam's second moment over every "
          "parameter at the last step; each ratio is against dense from the same seed, "
          "mean over seeds.\n")
    print("| variant | step 20–49 vs dense | step 100–149 vs dense | Adam v vs dense | "
          "final perplexity (each seed) |")
    print("|---|---|---|---|---|")
    for name, early, late, v, ppl in rows:
        r1 = statistics.mean(a / b for a, b in zip(early, dense_early, strict=True))
        r2 = statistics.mean(a / b for a, b in zip(late, dense_late, strict=True))
        rv = statistics.mean(a / b for a, b in zip(v, dense_v, strict=True))
        print(f"| {name} | {r1:.2f} | {r2:.2f} | {rv:.2f} | "
              f"{', '.join(f'{p:.2f}' for p in ppl)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
