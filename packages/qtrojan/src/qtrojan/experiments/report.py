"""Results files, the comparison summary and the CDA/ASR trade-off plot (design §4).

``delta_cda = CDA(QTrojan) - CDA(DPBA)`` and ``delta_asr = ASR(QTrojan) - ASR(DPBA)`` (ASR on
non-target samples, the DPBA convention) are averaged over every (task, poisoning rate) pair;
the paper reports +21 % and +19.9 % on average. ``strongest_dpba`` compares each task's QTrojan
with that task's highest *test*-ASR DPBA model: descriptive only, since the choice reads the
test split and the trigger is the design's fixed one. The fair comparison, with the trigger and
rate chosen on validation over several seeds, is :mod:`qtrojan.experiments.compare`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from qtrojan.experiments.records import Record

PAPER_DELTA_CDA = 0.21
PAPER_DELTA_ASR = 0.199

CSV_COLUMNS = ("task", "method", "poison_rate", "cda", "asr_all", "asr_nontarget",
               "asr_shots_all", "asr_shots_nontarget", "asr_after_ft", "asr_retrained",
               "gate_overhead",
               "depth_overhead", "train_time_s")


def summarize(records: list[Record]) -> dict[str, Any]:
    """Mean deltas QTrojan - DPBA, overall and per poisoning rate, plus per-task checks."""
    by_task: dict[str, dict[str, Any]] = {}
    for r in records:
        entry = by_task.setdefault(r.task, {"dpba": []})
        if r.method == "dpba":
            entry["dpba"].append(r)
        else:
            entry[r.method] = r
    pairs = []
    strongest = []
    checks = {}
    for name, entry in by_task.items():
        qt, clean = entry.get("qtrojan"), entry.get("clean")
        if qt is None:
            continue
        if clean is not None:
            checks[name] = {"cda_equals_clean": qt.cda == clean.cda,
                            "asr_is_one": qt.asr == 1.0}
        for d in entry["dpba"]:
            pairs.append((d.poison_rate, qt.cda - d.cda, qt.asr - d.asr))
        if entry["dpba"]:
            d = max(entry["dpba"], key=lambda r: (r.asr, -r.poison_rate))
            strongest.append((qt.cda - d.cda, qt.asr - d.asr))
    out: dict[str, Any] = {"paper_delta_cda": PAPER_DELTA_CDA,
                           "paper_delta_asr": PAPER_DELTA_ASR, "n_pairs": len(pairs),
                           "checks": checks}
    if pairs:
        out["delta_cda"] = sum(p[1] for p in pairs) / len(pairs)
        out["delta_asr"] = sum(p[2] for p in pairs) / len(pairs)
        per_rate = {}
        for rate in sorted({p[0] for p in pairs}):
            sel = [p for p in pairs if p[0] == rate]
            per_rate[f"{rate:g}"] = {"delta_cda": sum(p[1] for p in sel) / len(sel),
                                     "delta_asr": sum(p[2] for p in sel) / len(sel)}
        out["per_rate"] = per_rate
        out["strongest_dpba"] = {"delta_cda": sum(p[0] for p in strongest) / len(strongest),
                                 "delta_asr": sum(p[1] for p in strongest) / len(strongest)}
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def write_results(records: list[Record], summary: dict[str, Any], out_dir: str | Path
                  ) -> dict[str, Path]:
    """Write ``results.json``, ``results.csv`` and ``summary.json``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "csv": out / "results.csv",
             "summary": out / "summary.json"}
    rows = [r.to_dict() for r in records]
    paths["json"].write_text(json.dumps(rows, indent=2) + "\n")
    paths["summary"].write_text(json.dumps(summary, indent=2) + "\n")
    with paths["csv"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            w.writerow([_fmt(r.get(c)) for c in CSV_COLUMNS])
    return paths


def format_table(records: list[Record], summary: dict[str, Any]) -> str:
    """Plain-text table of the records and the delta summary."""
    head = (f"{'task':<16} {'method':<8} {'rate':>5} {'CDA':>6} {'ASR':>6} {'ASR_all':>7} "
            f"{'ASR@shots':>9} {'ASR_ft':>6} {'ASR_rt':>6} {'+gates':>6}")
    lines = [head, "-" * len(head)]
    for r in records:
        shots = r.asr_shots_nontarget
        lines.append(
            f"{r.task:<16} {r.method:<8} {r.poison_rate:>5.2f} {r.cda:>6.3f} "
            f"{r.asr:>6.3f} {r.asr_all:>7.3f} "
            f"{'' if shots is None else f'{shots:.3f}':>9} "
            f"{'' if r.asr_after_ft is None else format(r.asr_after_ft, '.3f'):>6} "
            f"{'' if r.asr_retrained is None else format(r.asr_retrained, '.3f'):>6} "
            f"{r.gate_overhead:>6}")
    if "delta_cda" in summary:
        lines.append("")
        lines.append(f"QTrojan - DPBA, mean over {summary['n_pairs']} (task, rate) pairs: "
                     f"dCDA {summary['delta_cda']:+.1%} (paper {PAPER_DELTA_CDA:+.1%}), "
                     f"dASR {summary['delta_asr']:+.1%} (paper {PAPER_DELTA_ASR:+.1%})")
        for rate, d in summary["per_rate"].items():
            lines.append(f"  r = {rate:<5} dCDA {d['delta_cda']:+.1%}  dASR {d['delta_asr']:+.1%}")
        s = summary["strongest_dpba"]
        lines.append(f"  vs the highest-test-ASR DPBA rate of each task (descriptive only: "
                     f"chosen on test, fixed trigger): dCDA {s['delta_cda']:+.1%}  "
                     f"dASR {s['delta_asr']:+.1%}")
    lines.append("(one seed, the design's trigger x0 := pi)")
    return "\n".join(lines)


def plot_tradeoff(records: list[Record], path: str | Path) -> Path:
    """CDA against ASR per task: DPBA's curve over poisoning rates, QTrojan and clean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r.task for r in records))
    cols = min(3, len(tasks))
    rows = (len(tasks) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, tasks, strict=False):
        recs = [r for r in records if r.task == name]
        dp = sorted((r for r in recs if r.method == "dpba"), key=lambda r: r.poison_rate)
        ax.plot([r.asr for r in dp], [r.cda for r in dp], "o-", color="tab:blue",
                label="DPBA")
        for r in dp:
            ax.annotate(f"r={r.poison_rate:g}", (r.asr, r.cda), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        for r in recs:
            if r.method == "qtrojan":
                ax.plot(r.asr, r.cda, "*", ms=14, color="tab:red", label="QTrojan")
            elif r.method == "clean":
                ax.axhline(r.cda, ls="--", color="gray", lw=1, label="clean CDA")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("ASR (non-target)")
        ax.set_ylabel("CDA")
        ax.set_xlim(-0.05, 1.05)
        cdas = [r.cda for r in recs]
        hi = max(cdas) + 0.02
        ax.set_ylim(min(min(cdas) - 0.03, hi - 0.1), hi)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
