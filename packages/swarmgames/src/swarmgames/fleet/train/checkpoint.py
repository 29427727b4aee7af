"""Checkpoints (weights + config + hash + training seed + learning curve) and learning-curve
output (design note §8 "Checkpointing of policies, and a model card")."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch

from swarmgames.core.config import config_hash, from_dict, to_dict
from swarmgames.core.render import save_figure
from swarmgames.fleet.hetgraph import vertiport_types
from swarmgames.fleet.policy import FleetPolicy
from swarmgames.fleet.sim import AamSim
from swarmgames.fleet.train.config import AamRunConfig


def save_checkpoint(path: Path, cfg: AamRunConfig, policy: FleetPolicy,
                    curve: list[dict[str, float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": policy.state_dict(), "config": to_dict(cfg),
                "config_hash": config_hash(cfg), "train_seed": cfg.seed, "curve": curve}, path)


def load_checkpoint(path: Path) -> tuple[FleetPolicy, AamRunConfig, dict[str, Any]]:
    """Policy, run config and the raw checkpoint (plain tensors and containers only:
    ``weights_only`` loading, no pickled code)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    config = blob["config"]
    legacy = config.get("eval", {}).pop("greedy", None)   # before eval.modes existed
    if legacy is not None:
        config["eval"]["modes"] = ["greedy", "sampled"] if legacy else ["sampled", "greedy"]
    cfg = from_dict(AamRunConfig, config)
    pol = FleetPolicy(cfg.policy, vertiport_types(AamSim(cfg.env, 0)), len(cfg.env.fleets))
    pol.load_state_dict(blob["state_dict"])
    pol.eval()
    return pol, cfg, blob


def write_curve(out: Path, curve: list[dict[str, float]]) -> None:
    """learning_curve.csv and learning_curve.png (fleet reward and FR per iteration)."""
    if not curve:
        return
    keys = sorted({k for row in curve for k in row})
    with open(out / "learning_curve.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(curve)
    it = [r["iteration"] for r in curve]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].plot(it, [r["fleet_reward"] for r in curve])
    ax[0].set_ylabel("fleet reward (training episodes)")
    ax[1].plot(it, [r["fulfilment_ratio"] for r in curve])
    ax[1].set_ylabel("fulfilment ratio")
    for a in ax:
        a.set_xlabel("PPO iteration")
    save_figure(fig, out / "learning_curve.png")
