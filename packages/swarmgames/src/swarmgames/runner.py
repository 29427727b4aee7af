"""Run configs: one YAML → simulator → metrics.jsonl, summary.json, run.json and plots
(design note §8).  A ``sweep`` (dotted key → list of values) and/or several ``seeds`` expand
into sub-runs plus a ``table.md`` with mean ± 95% CI."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from swarmgames import __version__
from swarmgames.core.config import (
    check,
    config_hash,
    from_dict,
    read_config,
    set_dotted,
    to_dict,
)
from swarmgames.core.render import plot_snapshot, plot_timeline, save_gif
from swarmgames.core.stats import markdown_table, mean_ci
from swarmgames.games.build import make_coco_sim, make_flock_sim
from swarmgames.games.coco import CocoSim, summarise_coco
from swarmgames.games.config import CocoConfig, FlockConfig
from swarmgames.games.flock import FlockSim, summarise_flock


@dataclass(frozen=True)
class OutputConfig:
    """What a run writes besides metrics: plots, and a GIF every ``gif_every`` steps."""

    plots: bool = True
    gif: bool = False
    gif_every: int = 5

    def __post_init__(self) -> None:
        check(self.gif_every >= 1, "gif_every", "must be >= 1")


@dataclass(frozen=True)
class RunConfig:
    """Top-level run config: which system, its settings, seed(s), optional sweep."""

    system: str = "flock"
    name: str = "run"
    seed: int = 0
    seeds: tuple[int, ...] = ()
    sweep: dict[str, Any] | None = None
    flock: FlockConfig = field(default_factory=FlockConfig)
    coco: CocoConfig = field(default_factory=CocoConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def __post_init__(self) -> None:
        check(self.system in ("flock", "coco"), "system", "must be 'flock' or 'coco'")
        if self.sweep is not None:
            check(isinstance(self.sweep, dict) and all(
                isinstance(v, list) and v for v in self.sweep.values()), "sweep",
                "must map dotted keys to non-empty lists")


def load_config(path: str | Path | None, overrides: list[str] = ()) -> tuple[RunConfig, dict]:
    """Read YAML, apply ``key=value`` overrides (dotted keys), validate."""
    raw = read_config(path, overrides)
    return from_dict(RunConfig, raw), raw


def make_sim(cfg: RunConfig, seed: int) -> FlockSim | CocoSim:
    """The simulator of ``cfg.system``."""
    if cfg.system == "flock":
        return make_flock_sim(cfg.flock, seed)
    return make_coco_sim(cfg.coco, seed)


def summarise(cfg: RunConfig, sim: FlockSim | CocoSim) -> dict[str, float]:
    """Scalar summary of a finished run."""
    if cfg.system == "flock":
        return summarise_flock(sim.history)
    return summarise_coco(sim.history, sim.initial)


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not np.isfinite(x):
        return None
    if isinstance(x, (np.floating, np.integer)):
        return _jsonable(x.item())
    return x


def run_single(cfg: RunConfig, seed: int, out: Path, gif: bool = False) -> dict[str, float]:
    """One seeded run; writes its files under ``out``; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    sim = make_sim(cfg, seed)
    steps = cfg.flock.steps if cfg.system == "flock" else cfg.coco.steps
    snaps = [sim.snapshot()] if gif else []
    first = sim.snapshot()
    t0 = time.perf_counter()
    with open(out / "metrics.jsonl", "w") as fh:
        for k in range(steps):
            m = sim.step()
            fh.write(json.dumps({key: _jsonable(v) for key, v in m.items()}) + "\n")
            if gif and (k + 1) % cfg.output.gif_every == 0:
                snaps.append(sim.snapshot())
    wall = time.perf_counter() - t0
    summary = summarise(cfg, sim)
    summary.update(wall_s=wall, trajectory_hash=sim.trajectory_hash())
    (out / "summary.json").write_text(json.dumps(
        {k: _jsonable(v) for k, v in summary.items()}, indent=2))
    (out / "run.json").write_text(json.dumps({
        "name": cfg.name, "system": cfg.system, "seed": seed, "config_hash": config_hash(cfg),
        "version": __version__, "config": to_dict(cfg)}, indent=2, default=str))
    if cfg.output.plots:
        plot_snapshot(first, out / "snapshot_initial.png")
        plot_snapshot(sim.snapshot(), out / "snapshot_final.png")
        keys = (["components", "lambda2", "mean_hops", "min_distance", "order", "rounds"]
                if cfg.system == "flock" else
                ["coverage", "ue_coverage", "ue_connectivity", "components", "lambda2", "rounds"])
        plot_timeline(sim.history, keys, out / "timeline.png", title=f"{cfg.name} seed {seed}")
    if gif:
        save_gif(snaps, out / "episode.gif")
    return summary


def run(cfg: RunConfig, raw: dict, out: Path, gif: bool = False) -> dict[str, Any]:
    """Run ``cfg`` (expanding sweep × seeds); returns {label: summary or aggregate}."""
    seeds = list(cfg.seeds) if cfg.seeds else [cfg.seed]
    if not cfg.sweep and len(seeds) == 1:
        return {"run": run_single(cfg, seeds[0], out, gif or cfg.output.gif)}
    keys = list(cfg.sweep or {})
    combos = list(itertools.product(*[cfg.sweep[k] for k in keys])) if keys else [()]
    results: dict[str, Any] = {}
    for combo in combos:
        variant = json.loads(json.dumps(raw))
        variant.pop("sweep", None)
        for k, v in zip(keys, combo, strict=True):
            set_dotted(variant, k, v)
        vcfg = from_dict(RunConfig, variant)
        label = ",".join(f"{k}={v}" for k, v in zip(keys, combo, strict=True)) or "base"
        per_seed = [run_single(vcfg, s, out / label.replace("/", "_") / f"seed{s}", False)
                    for s in seeds]
        agg = {m: mean_ci([p[m] for p in per_seed]) for m in per_seed[0]
               if isinstance(per_seed[0][m], float)}
        results[label] = agg
    (out / "summary.json").write_text(json.dumps(
        {lab: {m: [_jsonable(a), _jsonable(b)] for m, (a, b) in agg.items()}
         for lab, agg in results.items()}, indent=2))
    (out / "table.md").write_text(markdown_table(results))
    return results
