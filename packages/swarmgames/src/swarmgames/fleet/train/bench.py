"""Encoder benchmark (design note §3.5, §3.7 offline part): the same decoder and training on
HetGAT, GCN, GAT, GATv2, R-GCN, HGT and MLP encoders, several training seeds each, evaluated on
the same fixed seeds; heuristics on those seeds as reference rows.  Not run by the unit tests.

The table reports, per encoder, the mean over training seeds of the per-run evaluation means,
± the 95% CI across training seeds, plus the paired difference HetGAT − encoder (same training
seed, same evaluation seeds)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from swarmgames.core.stats import mean_t_ci
from swarmgames.fleet.train.config import AamRunConfig


def _one(args: tuple[AamRunConfig, str]) -> dict:
    cfg, out = args
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    from swarmgames.fleet.train.checkpoint import save_checkpoint, write_curve
    from swarmgames.fleet.train.evaluate import evaluate_policy
    from swarmgames.fleet.train.ppo import Trainer

    res = Trainer(cfg).train()
    run = Path(out)
    save_checkpoint(run / "checkpoint.pt", cfg, res.policy, res.curve)
    write_curve(run, res.curve)
    evs = {mode: evaluate_policy(cfg.env, res.policy, cfg.eval.seeds, greedy=mode == "greedy")
           for mode in cfg.eval.modes}
    ev = evs[cfg.eval.modes[0]]                      # the headline mode
    row = {"encoder": cfg.policy.encoder, "seed": cfg.seed,
           "train_s": res.curve[-1]["time_s"], "train_cpu_s": res.curve[-1]["cpu_s"],
           "iterations": len(res.curve),
           "fleet_reward": float(np.mean([m["fleet_reward"] for m in ev])),
           "fulfilment_ratio": float(np.mean([m["fulfilment_ratio"] for m in ev])),
           "per_seed_reward": [m["fleet_reward"] for m in ev],
           "per_seed_fr": [m["fulfilment_ratio"] for m in ev],
           "by_mode": {mode: {k: float(np.mean([m[k] for m in e]))
                              for k in ("fleet_reward", "fulfilment_ratio")}
                       for mode, e in evs.items()}}
    with open(run / "eval.json", "w") as fh:
        json.dump(row, fh)
    return row


def bench(cfg: AamRunConfig, encoders: list[str], train_seeds: list[int], out: Path,
          jobs: int = 1, iterations: int | None = None,
          time_budget_s: float | None = None) -> str:
    """Train every (encoder, seed), evaluate, write ``bench.jsonl`` and ``bench.md``.

    ``time_budget_s`` gives every run the same training CPU time (equal compute, measured as
    the process's CPU seconds so that load from other processes does not count; the iteration
    count is then only a cap) instead of the same number of iterations."""
    out.mkdir(parents=True, exist_ok=True)
    tasks = []
    for enc in encoders:
        for s in train_seeds:
            tc = cfg.train if iterations is None else replace(cfg.train, iterations=iterations)
            if time_budget_s is not None:
                tc = replace(tc, time_budget_s=time_budget_s)
            c = replace(cfg, seed=s, policy=replace(cfg.policy, encoder=enc), train=tc)
            tasks.append((c, str(out / f"{enc}_seed{s}")))
    if jobs > 1:
        with mp.get_context("spawn").Pool(jobs) as pool:
            rows = pool.map(_one, tasks, chunksize=1)
    else:
        rows = [_one(t) for t in tasks]
    with open(out / "bench.jsonl", "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    return write_table(cfg, rows, out)


def paired_deltas(runs: dict[int, dict], ref: dict[int, dict]
                  ) -> tuple[list[int], tuple[float, float], tuple[float, float]] | None:
    """Paired reference − encoder differences of fleet reward and fulfilment ratio over the
    training seeds both have (mean, Student-t 95 % half-width each); None without any."""
    common = [s for s in sorted(runs) if s in ref]
    if not common:
        return None
    dr = mean_t_ci([ref[s]["fleet_reward"] - runs[s]["fleet_reward"] for s in common])
    df = mean_t_ci([ref[s]["fulfilment_ratio"] - runs[s]["fulfilment_ratio"] for s in common])
    return common, dr, df


def write_table(cfg: AamRunConfig, rows: list[dict], out: Path) -> str:
    from swarmgames.fleet.train.evaluate import evaluate_heuristic

    by = {}
    for r in rows:
        by.setdefault(r["encoder"], {})[r["seed"]] = r
    ref = by.get("hetgat", {})
    lines = [f"Encoder comparison on `{cfg.name}` ({len(cfg.eval.seeds)} evaluation seeds "
             f"{cfg.eval.seeds[0]}…{cfg.eval.seeds[-1]}, {cfg.eval.modes[0]} actions; mean over "
             "training "
             "seeds ± Student-t 95% CI across training seeds; Δ = paired HetGAT − encoder)", "",
             "| policy | training seeds | fleet reward | fulfilment ratio | Δ reward vs HetGAT "
             "| Δ FR vs HetGAT | train s/run | iterations/run |",
             "|---|---|---|---|---|---|---|---|"]
    for enc, runs in by.items():
        seeds = sorted(runs)
        rew = mean_t_ci([runs[s]["fleet_reward"] for s in seeds])
        fr = mean_t_ci([runs[s]["fulfilment_ratio"] for s in seeds])
        pd = paired_deltas(runs, ref) if enc != "hetgat" else None
        dtxt = ("– | –" if pd is None else
                f"{pd[1][0]:+.1f} ± {pd[1][1]:.1f} | {pd[2][0]:+.3f} ± {pd[2][1]:.3f}")
        ts = np.mean([runs[s]["train_s"] for s in seeds])
        its = np.mean([runs[s].get("iterations", np.nan) for s in seeds])
        lines.append(f"| {enc} | {seeds} | {rew[0]:.1f} ± {rew[1]:.1f} | {fr[0]:.3f} ± "
                     f"{fr[1]:.3f} | {dtxt} | {ts:.0f} | {its:.0f} |")
    for h in ("random", "greedy_nearest", "greedy_profit", "hungarian"):
        ev = evaluate_heuristic(cfg.env, h, cfg.eval.seeds)
        rew = mean_t_ci([m["fleet_reward"] for m in ev])
        fr = mean_t_ci([m["fulfilment_ratio"] for m in ev])
        lines.append(f"| {h} (over eval seeds) | – | {rew[0]:.1f} ± {rew[1]:.1f} | "
                     f"{fr[0]:.3f} ± {fr[1]:.3f} | – | – | – | – |")
    text = "\n".join(lines) + "\n"
    (out / "bench.md").write_text(text)
    return text
