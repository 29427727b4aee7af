"""``swarmgames train | eval | bench`` for the AAM fleet game (design note §3.4-§3.6, §8)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from swarmgames.core.config import config_hash, to_dict
from swarmgames.fleet.train.config import load_aam_config


def _train(args: argparse.Namespace) -> int:
    from swarmgames.fleet.render import plot_network
    from swarmgames.fleet.sim import AamSim
    from swarmgames.fleet.train.checkpoint import save_checkpoint, write_curve
    from swarmgames.fleet.train.evaluate import comparison_table
    from swarmgames.fleet.train.ppo import Trainer

    sets = list(args.sets) + ([f"seed={args.seed}"] if args.seed is not None else [])
    cfg, _ = load_aam_config(args.config, sets)
    out = args.out or Path("runs") / f"{cfg.name}-{cfg.policy.encoder}-s{cfg.seed}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps({"config": to_dict(cfg),
                                              "config_hash": config_hash(cfg)}, indent=1))
    res = Trainer(cfg, log=print).train()
    save_checkpoint(out / "checkpoint.pt", cfg, res.policy, res.curve)
    write_curve(out, res.curve)
    plot_network(AamSim(cfg.env, cfg.eval.seeds[0]).snapshot(), out / "network.png")
    if not args.no_eval:
        table, _ = comparison_table(cfg.env, cfg.eval.seeds, {cfg.policy.encoder: res.policy},
                                    modes=cfg.eval.modes)
        (out / "eval.md").write_text(table)
        print(table)
    print(f"wrote {out}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from swarmgames.fleet.render import plot_network, rollout_frames
    from swarmgames.fleet.sim import AamSim
    from swarmgames.fleet.train.checkpoint import load_checkpoint
    from swarmgames.fleet.train.evaluate import (
        comparison_table,
        generalisation_matrix,
        paired_table,
    )
    from swarmgames.fleet.train.rollout import policy_actor

    cfg, _ = load_aam_config(args.config, list(args.sets))
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    learned = {}
    for ck in args.checkpoint:
        pol, tcfg, _ = load_checkpoint(ck)
        learned[f"{tcfg.name}:{tcfg.policy.encoder}:s{tcfg.seed}"] = pol
    table, rows = comparison_table(cfg.env, cfg.eval.seeds, learned, tuple(args.heuristics),
                                   modes=cfg.eval.modes)
    (out / "eval.md").write_text(table)
    (out / "per_seed.json").write_text(json.dumps(rows))
    print(table)
    if args.paired:
        if args.paired not in rows:
            raise SystemExit(f"--paired {args.paired}: not among the evaluated heuristics "
                             f"{list(args.heuristics)}")
        paired = paired_table(rows, args.paired)
        (out / "paired.md").write_text(paired)
        print(paired)
    if args.matrix is not None and learned:
        tests = {Path(p).stem: load_aam_config(p)[0].env for p in [args.config, *args.matrix]}
        mat = generalisation_matrix(learned, tests, cfg.eval.seeds,
                                    greedy=cfg.eval.modes[0] == "greedy")
        (out / "generalisation.md").write_text(mat + "\n")
        print(mat)
    if learned:
        pol = next(iter(learned.values()))
        sim = AamSim(cfg.env, cfg.eval.seeds[0])
        rollout_frames(sim, policy_actor(pol), out / "network_final.png")
    else:
        plot_network(AamSim(cfg.env, cfg.eval.seeds[0]).snapshot(), out / "network.png")
    print(f"wrote {out}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from swarmgames.fleet.train.bench import bench

    cfg, _ = load_aam_config(args.config, list(args.sets))
    print(bench(cfg, args.encoders, args.train_seeds, args.out, args.jobs, args.iterations,
                args.time_budget))
    return 0


def run_aam(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    return {"train": _train, "eval": _eval, "bench": _bench}[args.cmd](args)
