"""Run configuration of AAM training / evaluation (design note §3.4, §3.6): environment,
policy, optimiser and evaluation seed lists, loaded from YAML with ``--set`` overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarmgames.core.config import check, from_dict, read_config
from swarmgames.fleet.config import AamConfig
from swarmgames.fleet.policy import PolicyConfig


@dataclass(frozen=True)
class TrainConfig:
    """PPO defaults from MAPPO (§3.4): γ 0.99, λ 0.95, clip 0.2, entropy 0.01, 4 epochs,
    Adam 3e-4, grad clip 0.5.  ``serve_bonus`` adds that much training reward per request picked
    up (credited like the env reward: to the fleet or the vehicle); it shapes learning towards
    the fulfilment ratio and never changes the evaluated fleet reward.  ``algo: reinforce`` uses
    the episode return minus a greedy rollout baseline (``baseline: rollout``) or the batch mean
    (``baseline: mean``).  ``imitate`` names a heuristic (``greedy_nearest``, …) whose play on
    ``imitate_episodes`` episodes warm-starts the policy (cross-entropy on its actions) and the
    critic (regression on its semi-MDP returns) for ``imitate_epochs`` epochs before RL;
    ``none`` trains from scratch.  ``time_budget_s`` > 0 stops RL once the process has used
    that many CPU seconds (equal-compute comparisons; ``iterations`` is then a cap)."""

    algo: str = "ppo"
    iterations: int = 30
    time_budget_s: float = 0.0
    episodes_per_iter: int = 4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    entropy: float = 0.01
    value_coef: float = 0.5
    epochs: int = 4
    minibatch_steps: int = 60
    lr: float = 3e-4
    grad_clip: float = 0.5
    reward_scale: float = 0.05
    baseline: str = "rollout"
    serve_bonus: float = 0.0
    imitate: str = "none"
    imitate_episodes: int = 16
    imitate_epochs: int = 10
    log_every: int = 1

    def __post_init__(self) -> None:
        check(self.algo in ("ppo", "reinforce"), "algo", "must be 'ppo' or 'reinforce'")
        check(self.iterations >= 1, "iterations", "must be >= 1")
        check(self.time_budget_s >= 0, "time_budget_s", "must be >= 0 (0 = no budget)")
        check(self.episodes_per_iter >= 1, "episodes_per_iter", "must be >= 1")
        check(0 < self.gamma <= 1, "gamma", "must be in (0, 1]")
        check(0 <= self.gae_lambda <= 1, "gae_lambda", "must be in [0, 1]")
        check(self.clip > 0, "clip", "must be > 0")
        check(self.epochs >= 1, "epochs", "must be >= 1")
        check(self.minibatch_steps >= 1, "minibatch_steps", "must be >= 1")
        check(self.lr > 0, "lr", "must be > 0")
        check(self.reward_scale > 0, "reward_scale", "must be > 0")
        check(self.serve_bonus >= 0, "serve_bonus", "must be >= 0")
        check(self.imitate in ("none", "random", "greedy_nearest", "greedy_profit"), "imitate",
              "must be 'none' or a decentralised heuristic: 'greedy_nearest', 'greedy_profit', "
              "'random'")
        check(self.imitate_episodes >= 1, "imitate_episodes", "must be >= 1")
        check(self.imitate_epochs >= 0, "imitate_epochs", "must be >= 0")
        check(self.baseline in ("rollout", "mean"), "baseline", "must be 'rollout' or 'mean'")


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation over ``n_seeds`` fixed seeds starting at ``seed_start`` (disjoint from the
    training seeds).  ``modes`` lists how a learned policy picks actions: ``sampled`` from its
    stochastic policy (what it was trained as, §3.3) or ``greedy`` (argmax); the first mode is
    the headline one (benchmark table, generalisation matrix), and every mode gets a row in the
    comparison table."""

    n_seeds: int = 20
    seed_start: int = 100_000
    modes: tuple[str, ...] = ("sampled", "greedy")

    def __post_init__(self) -> None:
        check(self.n_seeds >= 1, "n_seeds", "must be >= 1")
        check(len(self.modes) >= 1 and all(m in ("sampled", "greedy") for m in self.modes),
              "modes", f"must be a non-empty list of 'sampled' / 'greedy', got {self.modes!r}")

    @property
    def seeds(self) -> list[int]:
        return list(range(self.seed_start, self.seed_start + self.n_seeds))


@dataclass(frozen=True)
class AamRunConfig:
    """Top level of configs/aam_*.yaml."""

    name: str = "aam"
    seed: int = 0
    env: AamConfig = field(default_factory=AamConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def load_aam_config(path: str | Path | None, overrides: list[str] = ()
                    ) -> tuple[AamRunConfig, dict[str, Any]]:
    """Read YAML, apply dotted ``key=value`` overrides, validate (errors name the key)."""
    raw = read_config(path, overrides)
    return from_dict(AamRunConfig, raw), raw
