"""CoCo against communication-aware baselines, every method tuned on seeds disjoint from the
evaluation seeds (issue 22).

Tuning (``--tune-seeds``): CoCo's link weight ``w_link`` over ``--w-link`` (w_cov = 100 and
w_col = 50 fixed: they set the scale and the safety term), and the baselines' link budget
``baseline_range_fraction`` over ``--fractions`` for ``lloyd_connected`` (Lloyd under a
spanning-tree connectivity constraint) and ``relay_lattice`` (static triangular relay
lattice); Lloyd/CVT has no parameter.  Each is scored by coverage + UE connectivity over the
last 50 stages, averaged over the tuning seeds, and the best setting is kept.  Evaluation
(``--eval-seeds``, used once): every method at its chosen setting, mean ± Student-t 95 % CI.
Default CoCo scenario (8 UAVs, 5 stationary UEs, 200 stages, default ``settle``).

    python packages/swarmgames/benchmarks/coco_baselines.py --tune-seeds 50 51 52 53 54 \\
        --eval-seeds 300 301 302 303 304 --out benchmarks/results/coco-baselines.md
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
from pathlib import Path
from typing import Any

import numpy as np

from swarmgames.core.config import from_dict
from swarmgames.core.stats import mean_t_ci
from swarmgames.games.build import make_coco_sim
from swarmgames.games.coco import summarise_coco
from swarmgames.games.config import CocoConfig

KEYS = ["coverage_last", "ue_connectivity_last", "connected_fraction", "components_last",
        "J_drops_last"]


def run(job: tuple[dict[str, Any], int, int]) -> dict[str, float]:
    """One episode; the summary plus the number of J drops in the last 50 stages."""
    over, seed, steps = job
    sim = make_coco_sim(from_dict(CocoConfig, {"steps": steps, **over}), seed)
    sim.run()
    out = summarise_coco(sim.history, sim.initial)
    j = np.array([h["objective"] for h in sim.history])
    out["J_drops_last"] = float((np.diff(j[-51:]) < -1e-9).sum())
    return out


def score(rows: list[dict[str, float]]) -> float:
    """The tuning criterion: mean of coverage + UE connectivity (last 50 stages)."""
    return float(np.mean([r["coverage_last"] + r["ue_connectivity_last"] for r in rows]))


def candidates(w_links: list[float], fractions: list[float]) -> dict[str, list[dict]]:
    """Method → the settings tried on the tuning seeds."""
    return {"coco": [{"weights": {"w_link": w}} for w in w_links],
            "lloyd": [{"controller": "lloyd"}],
            "lloyd_connected": [{"controller": "lloyd_connected",
                                 "baseline_range_fraction": f} for f in fractions],
            "relay_lattice": [{"controller": "relay_lattice",
                               "baseline_range_fraction": f} for f in fractions]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tune-seeds", type=int, nargs="+", required=True)
    ap.add_argument("--eval-seeds", type=int, nargs="+", required=True)
    ap.add_argument("--w-link", type=float, nargs="+", default=[5.0, 10.0, 20.0])
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.7, 0.8, 0.9, 1.0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    if set(a.tune_seeds) & set(a.eval_seeds):
        raise SystemExit("--tune-seeds and --eval-seeds must be disjoint")
    grid = candidates(a.w_link, a.fractions)
    jobs = [(o, s, a.steps) for opts in grid.values() for o in opts for s in a.tune_seeds]
    with mp.get_context("fork").Pool(a.jobs) as pool:
        tuned = pool.map(run, jobs)
        k = len(a.tune_seeds)
        lines = ["## Tuning (seeds " + " ".join(map(str, a.tune_seeds)) + ")", "",
                 "| method | setting | coverage + UE connectivity |", "|---|---|---|"]
        best: dict[str, dict] = {}
        at = 0
        for name, opts in grid.items():
            scores = []
            for o in opts:
                scores.append(score(tuned[at: at + k]))
                at += k
                lines.append(f"| {name} | `{o}` | {scores[-1]:.3f} |")
            best[name] = opts[int(np.argmax(scores))]
            print(name, "chosen", best[name], flush=True)
        evals = pool.map(run, [(best[n], s, a.steps) for n in grid for s in a.eval_seeds])
    n = len(a.eval_seeds)
    lines += ["", "## Evaluation (held-out seeds " + " ".join(map(str, a.eval_seeds))
              + "; mean ± Student-t 95 % CI)", "",
              "| method | chosen setting | " + " | ".join(KEYS) + " |",
              "|" + "---|" * (len(KEYS) + 2)]
    per_seed = ["", "Per seed (coverage_last / ue_connectivity_last / connected_fraction):", ""]
    for i, name in enumerate(grid):
        rows = evals[i * n: (i + 1) * n]
        cells = []
        for key in KEYS:
            m, h = mean_t_ci([r[key] for r in rows])
            cells.append(f"{m:.3g} ± {h:.2g}")
        lines.append(f"| {name} | `{best[name]}` | " + " | ".join(cells) + " |")
        per_seed.append(f"- {name}: " + ", ".join(
            f"{s}: {r['coverage_last']:.3f} / {r['ue_connectivity_last']:.3f} / "
            f"{r['connected_fraction']:.3f}" for s, r in zip(a.eval_seeds, rows, strict=True)))
    head = ["# CoCo vs communication-aware baselines (tuned on disjoint seeds)", "",
            "Command (repository root, OMP_NUM_THREADS=1, shared 2-core CPU): `python "
            "packages/swarmgames/benchmarks/coco_baselines.py --tune-seeds "
            + " ".join(map(str, a.tune_seeds)) + " --eval-seeds "
            + " ".join(map(str, a.eval_seeds)) + " --w-link "
            + " ".join(map(str, a.w_link)) + " --fractions " + " ".join(map(str, a.fractions))
            + f" --steps {a.steps} --out {a.out}`", ""]
    a.out.write_text("\n".join(head + lines + per_seed) + "\n")


if __name__ == "__main__":
    main()
