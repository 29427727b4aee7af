"""Merge encoder-bench runs made in separate sessions into one table (issue 22).

Reads per-run rows from earlier results files (their "Per run" markdown table: encoder, seed,
fleet reward, fulfilment ratio, PPO iterations, train_cpu_s, train_s) and from ``bench.jsonl``
files written by ``swarmgames bench``, and writes, per encoder, the mean over training seeds ±
Student-t 95 % CI across them (``core.stats.mean_t_ci``, t quantile for n − 1 degrees of
freedom) and the paired HetGAT − encoder differences over the training seeds both have.  Runs
are only comparable when they share the config, the CPU-seconds budget and the evaluation
seeds; the caller states that in the results file.

    python packages/swarmgames/benchmarks/aam_bench_merge.py \\
        --md benchmarks/results/aam-relational-bench.md --jsonl runs/gnn/bench.jsonl \\
        --out benchmarks/results/aam-relational-bench-gnn.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from swarmgames.core.stats import mean_t_ci
from swarmgames.fleet.train.bench import paired_deltas


def md_runs(path: Path) -> list[dict]:
    """Rows of the 'Per run' table of an earlier results file."""
    rows, inside = [], False
    for line in path.read_text().splitlines():
        if line.startswith("| encoder | seed |"):
            inside = True
            continue
        if inside and line.startswith("|---"):
            continue
        if inside and line.startswith("|"):
            c = [x.strip() for x in line.strip("|").split("|")]
            rows.append({"encoder": c[0], "seed": int(c[1]), "fleet_reward": float(c[2]),
                         "fulfilment_ratio": float(c[3]), "iterations": int(c[4]),
                         "train_cpu_s": float(c[5])})
        elif inside:
            break
    return rows


def table(rows: list[dict]) -> list[str]:
    """Per-encoder means ± t95 and paired differences against HetGAT."""
    by: dict[str, dict[int, dict]] = {}
    for r in rows:
        by.setdefault(r["encoder"], {})[r["seed"]] = r
    ref = by.get("hetgat", {})
    out = ["| encoder | training seeds | fleet reward | fulfilment ratio | paired HetGAT − "
           "encoder: reward | paired: FR | PPO iterations | train CPU s |",
           "|---|---|---|---|---|---|---|---|"]
    for enc, runs in by.items():
        seeds = sorted(runs)
        rew = mean_t_ci([runs[s]["fleet_reward"] for s in seeds])
        fr = mean_t_ci([runs[s]["fulfilment_ratio"] for s in seeds])
        pd = paired_deltas(runs, ref) if enc != "hetgat" else None
        d = ("– | –" if pd is None else f"{pd[1][0]:+.1f} ± {pd[1][1]:.1f} (seeds {pd[0]}) | "
             f"{pd[2][0]:+.3f} ± {pd[2][1]:.3f}")
        its = [runs[s]["iterations"] for s in seeds]
        cpu = [runs[s]["train_cpu_s"] for s in seeds]
        out.append(f"| {enc} | {seeds} | {rew[0]:.1f} ± {rew[1]:.1f} | {fr[0]:.3f} ± "
                   f"{fr[1]:.3f} | {d} | {min(its)}-{max(its)} | {min(cpu):.1f}-{max(cpu):.1f} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--md", type=Path, nargs="*", default=[])
    ap.add_argument("--jsonl", type=Path, nargs="*", default=[])
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    rows = [r for p in a.md for r in md_runs(p)]
    for p in a.jsonl:
        rows += [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    per_run = ["", "Per run:", "", "| encoder | seed | fleet reward | fulfilment ratio | "
               "PPO iterations | train_cpu_s |", "|---|---|---|---|---|---|"]
    per_run += [f"| {r['encoder']} | {r['seed']} | {r['fleet_reward']:.1f} | "
                f"{r['fulfilment_ratio']:.3f} | {r['iterations']} | {r['train_cpu_s']:.1f} |"
                for r in rows]
    head = ["Command: `python packages/swarmgames/benchmarks/aam_bench_merge.py --md "
            + " ".join(map(str, a.md)) + " --jsonl " + " ".join(map(str, a.jsonl))
            + f" --out {a.out}`", ""]
    a.out.write_text("\n".join(head + table(rows) + per_run) + "\n")
    print("\n".join(table(rows)))


if __name__ == "__main__":
    main()
