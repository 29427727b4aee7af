"""Evaluation over fixed seed lists with 95% confidence intervals, the generalisation matrix
and learned-vs-heuristic tables (design note §3.5, §8).  Paired comparisons use identical
seeds for every method."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from swarmgames.core.stats import markdown_table, mean_t_ci
from swarmgames.fleet.config import AamConfig
from swarmgames.fleet.heuristics import HEURISTICS, make_heuristic
from swarmgames.fleet.policy import FleetPolicy
from swarmgames.fleet.sim import AamSim
from swarmgames.fleet.train.rollout import run_episodes

REPORT = ("fleet_reward", "fulfilment_ratio", "fulfilment_ratio_adj", "mean_wait",
          "deadhead_ratio", "conflict_rate", "violations")


def evaluate_heuristic(cfg: AamConfig, name: str, seeds: list[int]) -> list[dict[str, float]]:
    """Per-seed metrics of a heuristic; ``hungarian`` runs with ``topology: full`` (it is a
    full-information reference)."""
    env = replace(cfg, topology="full") if name == "hungarian" else cfg
    out = []
    for s in seeds:
        sim = AamSim(env, s)
        pol = make_heuristic(name, np.random.default_rng([s, 7]))
        while not sim.done:
            sim.step(pol(sim))
        out.append(sim.metrics())
    return out


def evaluate_policy(cfg: AamConfig, policy: FleetPolicy, seeds: list[int], greedy: bool = True,
                    sample_seed: int = 0) -> list[dict[str, float]]:
    """Per-seed metrics of the learned policy (all seeds in one lock-step batch).

    The vertiport typing (``single`` or ``depot_client``) is how the policy *reads* the
    network, not part of the environment's dynamics, so a test config is evaluated with the
    policy's typing (otherwise a ``depot_client`` policy met ``vertiport`` nodes and the
    generalisation matrix crashed with KeyError: 'depot')."""
    typing = "single" if policy.vp_types == ("vertiport",) else "depot_client"
    if cfg.vertiport_types != typing:
        cfg = replace(cfg, vertiport_types=typing)
    policy.eval()
    gen = torch.Generator().manual_seed(sample_seed)
    return [e.metrics for e in run_episodes(cfg, seeds, policy, greedy=greedy, gen=gen,
                                            record=False)]


def summarise(per_seed: list[dict[str, float]], keys: tuple[str, ...] = REPORT
              ) -> dict[str, tuple[float, float]]:
    """Mean ± Student-t 95% CI per metric."""
    return {k: mean_t_ci([float(m[k]) for m in per_seed]) for k in keys}


def comparison_table(cfg: AamConfig, seeds: list[int],
                     learned: dict[str, FleetPolicy] | None = None,
                     heuristics: tuple[str, ...] = HEURISTICS,
                     log: Callable[[str], None] | None = None,
                     modes: tuple[str, ...] = ("sampled", "greedy")
                     ) -> tuple[str, dict[str, list[dict[str, float]]]]:
    """Markdown table of learned policies (one row per action mode) and heuristics on the same
    evaluation seeds."""
    rows: dict[str, list[dict[str, float]]] = {}
    for name, pol in (learned or {}).items():
        for mode in modes:
            rows[f"{name} ({mode})"] = evaluate_policy(cfg, pol, seeds, greedy=mode == "greedy")
        if log:
            log(f"evaluated {name}")
    for h in heuristics:
        rows[h] = evaluate_heuristic(cfg, h, seeds)
    table = markdown_table({k: summarise(v) for k, v in rows.items()}, list(REPORT))
    return table, rows


def paired_table(rows: dict[str, list[dict[str, float]]], reference: str,
                 keys: tuple[str, ...] = ("fleet_reward", "fulfilment_ratio")) -> str:
    """Markdown table of paired differences row − ``reference`` on the same evaluation seeds:
    mean ± 95% CI of the per-seed difference and the number of seeds where the row is ahead
    (paired differences remove the seed-to-seed spread that both share)."""
    ref = rows[reference]
    head = "| policy | " + " | ".join(f"Δ {k} vs {reference} | seeds ahead" for k in keys)
    lines = [head + " |", "|---|" + "---|---|" * len(keys)]
    for name, per_seed in rows.items():
        if name == reference:
            continue
        cells = []
        for k in keys:
            d = [float(a[k]) - float(b[k]) for a, b in zip(per_seed, ref, strict=True)]
            m, ci = mean_t_ci(d)
            cells += [f"{m:+.3g} ± {ci:.2g}", f"{sum(x > 0 for x in d)}/{len(d)}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def generalisation_matrix(train: dict[str, FleetPolicy], test: dict[str, AamConfig],
                          seeds: list[int], metric: str = "fulfilment_ratio",
                          greedy: bool = False) -> str:
    """Markdown matrix: rows = policies (trained on a config), columns = test configs."""
    head = "| trained on \\ tested on | " + " | ".join(test) + " |"
    lines = [head, "|" + "---|" * (len(test) + 1)]
    for name, pol in train.items():
        cells = []
        for cfg in test.values():
            m, ci = mean_t_ci([r[metric] for r in evaluate_policy(cfg, pol, seeds, greedy)])
            cells.append(f"{m:.3g} ± {ci:.2g}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
