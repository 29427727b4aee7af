"""Command line: ``swarmgames run CONFIG.yaml [--set k=v ...]``, ``swarmgames compare``, and for
the AAM fleet game ``swarmgames train`` / ``eval`` / ``bench`` (design note §3, §8)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from swarmgames.core.config import ConfigError, config_hash


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``swarmgames`` console script."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    ap = argparse.ArgumentParser(prog="swarmgames", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a scenario config")
    r.add_argument("config", help="YAML config (see configs/)")
    r.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a dotted key, e.g. --set flock.n_agents=32")
    r.add_argument("--seed", type=int, default=None, help="override the seed")
    r.add_argument("--out", type=Path, default=None, help="output folder (default runs/NAME-HASH)")
    r.add_argument("--gif", action="store_true", help="also write episode.gif")
    c = sub.add_parser("compare", help="write the comparison table (fixed seeds)")
    c.add_argument("--out", type=Path, default=Path("runs/compare"))
    c.add_argument("--flock-seeds", type=int, nargs="+", default=[0, 1, 2])
    c.add_argument("--coco-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    c.add_argument("--sizes", type=int, nargs="+", default=[8, 32, 100])
    c.add_argument("--quick", action="store_true", help="short episodes (smoke test)")
    t = sub.add_parser("train", help="train an AAM fleet policy (PPO / REINFORCE)")
    t.add_argument("config", help="AAM YAML config (configs/aam_*.yaml)")
    t.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    t.add_argument("--seed", type=int, default=None, help="training seed")
    t.add_argument("--out", type=Path, default=None, help="output folder")
    t.add_argument("--no-eval", action="store_true", help="skip the final evaluation table")
    e = sub.add_parser("eval", help="evaluate checkpoints and heuristics on fixed seeds")
    e.add_argument("config", help="AAM YAML config defining the test environment")
    e.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    e.add_argument("--checkpoint", type=Path, action="append", default=[],
                   help="checkpoint.pt (repeatable)")
    e.add_argument("--heuristics", nargs="*",
                   default=["random", "greedy_nearest", "greedy_profit", "hungarian"])
    e.add_argument("--matrix", nargs="*", default=None, metavar="TEST_CONFIG",
                   help="also write the generalisation matrix over these test configs")
    e.add_argument("--paired", default=None, metavar="HEURISTIC",
                   help="also write paired.md: every policy minus this heuristic, seed by seed")
    e.add_argument("--out", type=Path, default=Path("runs/aam_eval"))
    b = sub.add_parser("bench", help="encoder benchmark: HetGAT vs GNN baselines, several "
                       "training seeds, one table")
    b.add_argument("config")
    b.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    b.add_argument("--encoders", nargs="+",
                   default=["hetgat", "gcn", "gat", "gatv2", "rgcn", "hgt", "mlp"])
    b.add_argument("--train-seeds", type=int, nargs="+", default=[0, 1, 2])
    b.add_argument("--iterations", type=int, default=None, help="override train.iterations")
    b.add_argument("--jobs", type=int, default=1, help="parallel training processes")
    b.add_argument("--time-budget", type=float, default=None,
                   help="equal compute: training CPU seconds per run (iterations become a cap)")
    b.add_argument("--out", type=Path, default=Path("runs/aam_bench"))
    args = ap.parse_args(argv)
    try:
        if args.cmd in ("train", "eval", "bench"):
            from swarmgames.fleet.train.cli_aam import run_aam

            return run_aam(args)
        if args.cmd == "run":
            from swarmgames.runner import load_config, run

            sets = list(args.sets) + ([f"seed={args.seed}"] if args.seed is not None else [])
            cfg, raw = load_config(args.config, sets)
            out = args.out or Path("runs") / f"{cfg.name}-{config_hash(cfg)}"
            res = run(cfg, raw, out, gif=args.gif)
            print(f"wrote {out}")
            if "run" in res:
                for k, v in res["run"].items():
                    print(f"  {k}: {v}")
            else:
                print((out / "table.md").read_text())
        else:
            from swarmgames.compare import compare

            steps = (40, 30) if args.quick else (None, None)
            print(compare(args.out, args.flock_seeds, args.coco_seeds, args.sizes, *steps))
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
