"""Command line: ``qtrojan run [config]`` and ``qtrojan switch {on,off} CONFIG_JSON``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    import torch

    from qtrojan.experiments.config import ExperimentConfig
    from qtrojan.experiments.report import format_table, plot_tradeoff, summarize, write_results
    from qtrojan.experiments.runner import run_experiment

    torch.set_num_threads(1)
    try:
        cfg = ExperimentConfig.load(args.config, args.set)
    except (OSError, ValueError) as e:
        print(f"qtrojan: invalid config: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    log = (lambda s: None) if args.quiet else (lambda s: print(s, flush=True))
    records = run_experiment(cfg, log)
    summary = summarize(records)
    summary["wall_time_s"] = time.perf_counter() - t0
    paths = write_results(records, summary, args.out)
    plot = plot_tradeoff(records, Path(args.out) / "tradeoff.png")
    print(format_table(records, summary))
    print(f"\nwrote {paths['json']}, {paths['csv']}, {paths['summary']}, {plot} "
          f"in {summary['wall_time_s']:.0f}s")
    if cfg.compare:
        from qtrojan.experiments.compare import (
            format_comparison,
            run_comparison,
            summarize_comparison,
            write_comparison,
        )

        t1 = time.perf_counter()
        results = run_comparison(cfg, log)
        comp = summarize_comparison(results)
        comp["wall_time_s"] = time.perf_counter() - t1
        path = write_comparison(results, comp, args.out)
        print()
        print(format_comparison(comp))
        print(f"\nwrote {path} in {comp['wall_time_s']:.0f}s")
    return 0


def _switch(args: argparse.Namespace) -> int:
    from qtrojan.attacks.qtrojan import activate, deactivate

    try:
        cfg = activate(args.path) if args.state == "on" else deactivate(args.path)
    except (OSError, ValueError) as e:
        print(f"qtrojan: {e}", file=sys.stderr)
        return 2
    print(f"{args.path}: enabled = {str(cfg.enabled).lower()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Argument parser for the ``qtrojan`` command."""
    p = argparse.ArgumentParser(prog="qtrojan", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train victims, evaluate clean / QTrojan / DPBA, write tables")
    r.add_argument("config", nargs="?", help="YAML/JSON experiment config (default: built-in "
                   "n=4 grid, same as configs/default.yaml)")
    r.add_argument("--out", default="qtrojan-results", help="output directory")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (YAML value; dotted keys such as "
                   "tasks.0.epochs=3); repeatable")
    r.add_argument("--quiet", action="store_true", help="no per-model progress lines")
    r.set_defaults(func=_run)
    s = sub.add_parser("switch", help="enable or disable the backdoor in a compiler config file")
    s.add_argument("state", choices=("on", "off"))
    s.add_argument("path", help="calibration config JSON written by qtrojan")
    s.set_defaults(func=_switch)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qtrojan`` console script."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
