"""Run every config of a suite and write one results table.

    python benchmarks/run_suite.py packages/flexsync/configs/adopt [--match 'c1-*'] \
        [--set steps=400]

Each config runs through the real launcher (forked gloo workers). The table (markdown) goes to
benchmarks/results/<suite>.md and to stdout, with per-run collective and ratio histograms from
the runs' metrics.jsonl.
"""

from __future__ import annotations

import argparse
import collections
import fnmatch
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def describe(run_dir: Path) -> tuple[str, str]:
    """Collectives used, and the method's own knob: ratio range, compression factor range,
    or for streams the largest device buffer (final / at mid-run) and the mean wait."""
    from flexsync.train.metrics import read_metrics

    rows = read_metrics(run_dir / "metrics.jsonl")
    coll = collections.Counter(r.get("collective", "-") for r in rows)
    coll_s = ", ".join(f"{k} {v}" for k, v in coll.most_common())
    for key in ("ratio", "cf"):
        vals = [r[key] for r in rows if key in r]
        if vals:
            return coll_s, f"{key} {min(vals):.3g}–{max(vals):.3g} (last {vals[-1]:.3g})"
    if "sync" in rows[-1]:
        syncs = sum(1 for r in rows if r.get("sync"))
        return coll_s, f"LSSR {1 - syncs / len(rows):.3f}"
    if "buffers" in rows[0]:
        mid = rows[len(rows) // 2]
        waits = [r["wait_s"] for r in rows]
        return coll_s, (f"max buffer {max(rows[-1]['buffers']):.0f} (mid-run "
                        f"{max(mid['buffers']):.0f}), mean wait {sum(waits) / len(waits):.2f} s")
    return coll_s, "-"


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("suite", type=Path)
    p.add_argument("--match", default="*", help="glob on config file names")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--table-only", action="store_true",
                   help="rebuild the table from the run directories without training")
    args = p.parse_args()

    from flexsync import load_config, train
    from flexsync.net.units import format_bytes

    configs = sorted(c for c in args.suite.glob("*.yaml") if fnmatch.fnmatch(c.name, args.match))
    if not configs:
        print(f"no config matches {args.match!r} in {args.suite}", file=sys.stderr)
        return 2
    lines = [
        "| run | strategy | test acc | final loss | sent/worker | modeled s | "
        "to target (modeled s) | wall s | collectives used | knob |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    started = time.time()
    for c in configs:
        cfg = load_config(c, args.set)
        if args.table_only:
            s = json.loads((Path(cfg.out) / "summary.json").read_text())
        else:
            print(f"== {c.name}", flush=True)
            s = train(cfg)
        coll, ratio = describe(Path(cfg.out))
        ttt = s["time_to_target_modeled_s"]
        metric = (f"ppl {s['final_perplexity']:.1f}" if "final_perplexity" in s
                  else f"{100 * s['final_accuracy']:.1f}%")
        lines.append(
            f"| {c.stem} | {s['strategy']} | {metric} | {s['final_loss']:.3f} | "
            f"{format_bytes(s['bytes_sent'])} | {s['modeled_time_s']:.1f} | "
            f"{'never' if ttt is None else f'{ttt:.1f}'} | {s['wall_time_s']:.1f} | {coll} | "
            f"{ratio} |")
    table = "\n".join(lines)
    header = (f"# {args.suite.name}\n\nCommand: `python benchmarks/run_suite.py {args.suite} "
              f"--match '{args.match}'" + "".join(f" --set {s}" for s in args.set) + "`  \n"
              f"Machine: {os.cpu_count()} CPU cores, gloo on loopback, modeled network."
              + ("" if args.table_only else
                 f" Total wall time {time.time() - started:.0f} s.") + "\n\n")
    args.out.mkdir(parents=True, exist_ok=True)
    name = args.suite.name + ("" if args.match == "*" else "-" + args.match.strip("*-"))
    (args.out / f"{name}.md").write_text(header + table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
