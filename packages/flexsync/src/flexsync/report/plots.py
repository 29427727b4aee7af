"""PNG plots of one run: loss and test metric against steps and against modeled time."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from flexsync.train.metrics import read_metrics  # noqa: E402


def _save(fig, axes, run_dir: Path, name: str, run_id: str | None = None) -> Path:
    """Grid every panel, title the figure with the run's name (and id), write
    ``run_dir/name`` (the run id also in the PNG's Description)."""
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(run_dir.name + (f" (run {run_id})" if run_id else ""))
    fig.tight_layout()
    out = run_dir / name
    fig.savefig(out, dpi=100,
                metadata={"Description": f"flexsync run {run_id}"} if run_id else None)
    plt.close(fig)
    return out


def plot_run(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    rows = read_metrics(run_dir / "metrics.jsonl")
    evals = [r for r in rows if "test_accuracy" in r]
    metric = "test_perplexity" if evals and "test_perplexity" in evals[0] else "test_accuracy"
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for col, (xkey, xlabel) in enumerate((("step", "step"), ("modeled_time", "modeled time (s)"))):
        axes[0, col].plot([r[xkey] for r in rows], [r["loss"] for r in rows], lw=0.8)
        axes[0, col].set(xlabel=xlabel, ylabel="training loss")
        axes[1, col].plot([r[xkey] for r in evals], [r[metric] for r in evals], marker="o", ms=3)
        axes[1, col].set(xlabel=xlabel, ylabel=metric.replace("_", " "))
    out = _save(fig, axes.ravel(), run_dir, "curves.png", rows[0].get("run_id") if rows else None)
    if any("cf" in r for r in rows):
        plot_factor(run_dir, rows)
    if rows and "buffers" in rows[0]:
        plot_streams(run_dir, rows)
    if any("decision" in r and "sync" in r for r in rows):
        plot_decisions(run_dir, rows)
    return out


def plot_decisions(run_dir: str | Path, rows: list[dict] | None = None) -> Path:
    """The ``auto`` strategy's decision timeline (docs/methods.md §6) against steps: sync or
    local, the keep fraction of each sync (1 = dense), the collective, and the α and β the
    decisions were priced under: ``decisions.png``."""
    run_dir = Path(run_dir)
    rows = [r for r in (rows or read_metrics(run_dir / "metrics.jsonl")) if "decision" in r]
    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(4, 1, figsize=(9, 9), sharex=True)
    axes[0].step(steps, [r["sync"] for r in rows], where="post", lw=0.8)
    axes[0].set(ylabel="sync (1) / local (0)", ylim=(-0.1, 1.1))
    synced = [r for r in rows if r["sync"] and r.get("ratio") is not None]
    axes[1].plot([r["step"] for r in synced], [r["ratio"] for r in synced], ".", ms=3)
    axes[1].set(yscale="log", ylabel="keep fraction (1 = dense)")
    names = sorted({r["collective"] for r in rows})
    axes[2].plot(steps, [names.index(r["collective"]) for r in rows], ".", ms=3)
    axes[2].set(yticks=range(len(names)), yticklabels=names, ylabel="collective")
    priced = [r for r in rows if "alpha" in r and "beta" in r]
    ax = axes[3]
    ax.plot([r["step"] for r in priced], [r["alpha"] for r in priced], lw=0.8, color="C0")
    ax.set(yscale="log", ylabel="α (s)", xlabel="step")
    twin = ax.twinx()
    twin.plot([r["step"] for r in priced], [r["beta"] for r in priced], lw=0.8, color="C1")
    twin.set(yscale="log", ylabel="β (s/byte)")
    return _save(fig, axes, run_dir, "decisions.png", rows[0].get("run_id") if rows else None)


def plot_streams(run_dir: str | Path, rows: list[dict]) -> Path:
    """Per-device buffer size (log scale) and the step's wait against modeled time, for runs
    on streams (ScaDLES §4.3): ``streams.png``."""
    run_dir = Path(run_dir)
    t = [r["modeled_time"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for d in range(len(rows[0]["buffers"])):
        axes[0].plot(t, [max(r["buffers"][d], 1e-1) for r in rows], lw=0.8, label=f"device {d}")
    axes[0].set(xlabel="modeled time (s)", ylabel="buffered samples", yscale="log")
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].plot(t, [r["wait_s"] for r in rows], lw=0.8)
    axes[1].set(xlabel="modeled time (s)", ylabel="wait for data (s)")
    return _save(fig, axes, run_dir, "streams.png", rows[0].get("run_id"))


def plot_factor(run_dir: str | Path, rows: list[dict] | None = None) -> Path:
    """The compression factor each step used (``cf`` in the metrics; 1 = dense) against steps,
    with the gains when logged (GraVAC's δ_min, δ_c): ``factor.png``."""
    run_dir = Path(run_dir)
    rows = [r for r in (rows or read_metrics(run_dir / "metrics.jsonl")) if "cf" in r]
    gains = [k for k in ("delta_min", "delta_c") if rows and k in rows[0]]
    fig, axes = plt.subplots(2 if gains else 1, 1, figsize=(9, 6 if gains else 3.5),
                             sharex=True, squeeze=False)
    steps = [r["step"] for r in rows]
    axes[0, 0].step(steps, [r["cf"] for r in rows], where="post", lw=0.8)
    axes[0, 0].set(yscale="log", ylabel="compression factor (1 = dense)")
    for k in gains:
        axes[1, 0].plot(steps, [r[k] for r in rows], lw=0.8, label=k.replace("_", " "))
    if gains:
        axes[1, 0].set(ylabel="agreed gain")
        axes[1, 0].legend(fontsize=8)
    axes[-1, 0].set(xlabel="step")
    return _save(fig, axes[:, 0], run_dir, "factor.png",
                 rows[0].get("run_id") if rows else None)


def plot_comparison(run_dirs: list[Path], out: Path, x: str = "modeled_time") -> Path:
    """Test metric of several runs against steps and against ``x`` (modeled_time or
    wall_time), one line per run."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for d in run_dirs:
        rows = [r for r in read_metrics(Path(d) / "metrics.jsonl") if "test_accuracy" in r]
        metric = "test_perplexity" if rows and "test_perplexity" in rows[0] else "test_accuracy"
        axes[0].plot([r["step"] for r in rows], [r[metric] for r in rows], label=Path(d).name)
        axes[1].plot([r[x] for r in rows], [r[metric] for r in rows], label=Path(d).name)
    axes[0].set(xlabel="step", ylabel="test metric")
    axes[1].set(xlabel=x.replace("_", " ") + " (s)", ylabel="test metric")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_scaling(rows: dict[str, dict[str, float]],
                 comm: dict[str, dict[int, dict[str, float]]], out: Path) -> Path:
    """``flexsync bench scaling``: left, compute / selection / top-k communication at N = 8
    stacked per preset (x = parameters); right, top-k and dense step time against world
    size per preset."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(rows)
    x = [rows[p]["n"] / 1e6 for p in names]
    compute = [rows[p]["compute_s"] for p in names]
    select = [rows[p]["select_s"] for p in names]
    c8 = [comm[p].get(8, next(iter(comm[p].values())))["topk"] for p in names]
    a.stackplot(x, compute, select, c8, labels=["compute", "selection", "top-k comm (N=8)"])
    a.set_xscale("log")
    a.set_xlabel("parameters (M)")
    a.set_ylabel("seconds per step")
    a.legend(loc="upper left")
    for p in names:
        worlds = sorted(comm[p])
        base = rows[p]["compute_s"]
        b.plot(worlds, [base + rows[p]["select_s"] + comm[p][w]["topk"] for w in worlds],
               marker="o", label=f"{p} top-k")
        b.plot(worlds, [base + comm[p][w]["dense"] for w in worlds], linestyle="--",
               label=f"{p} dense")
    b.set_xscale("log", base=2)
    b.set_yscale("log")
    b.set_xlabel("workers (α-β priced)")
    b.set_ylabel("seconds per step")
    b.legend(fontsize=7, ncol=2)
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_scaling_local(measured: dict[int, dict[str, dict[str, float]]], out: Path) -> Path:
    """``flexsync bench scaling``, the runs on local workers: left, the measured top-k
    allgather and dense allreduce seconds against the number of workers per size; right,
    each worker's private memory against the model's parameters per number of workers."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    sizes = sorted({s for per in measured.values() for s in per},
                   key=lambda s: next(per[s]["n"] for per in measured.values() if s in per))
    for s in sizes:
        worlds = [w for w in sorted(measured) if s in measured[w]]
        line, = a.plot(worlds, [measured[w][s]["topk_s"] for w in worlds], marker="o",
                       label=f"{s} top-k")
        a.plot(worlds, [measured[w][s]["dense_s"] for w in worlds], linestyle="--",
               marker="x", color=line.get_color(), label=f"{s} dense")
    a.set_xscale("log", base=2)
    a.set_yscale("log")
    a.set_xlabel("local workers (loopback, 2 shared cores)")
    a.set_ylabel("seconds per aggregation")
    a.legend(fontsize=7, ncol=2)
    for w in sorted(measured):
        per = measured[w]
        names = sorted(per, key=lambda s: per[s]["n"])
        b.plot([per[s]["n"] / 1e6 for s in names], [per[s]["peak_mb"] for s in names],
               marker="o", label=f"{w} workers")
    b.set_xscale("log")
    b.set_yscale("log")
    b.set_xlabel("parameters (M)")
    b.set_ylabel("private MB per worker")
    b.legend(fontsize=8)
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
