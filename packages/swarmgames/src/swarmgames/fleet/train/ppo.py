"""Shared-parameter PPO (MAPPO / IPPO) with the semi-MDP discount, and REINFORCE with a greedy
rollout baseline (design note §3.4).

Only decision steps of idle vehicles enter the loss.  For agent i with decisions at
t_0 < t_1 < …, the reward between decisions is discounted inside the interval and the
bootstrap uses γ^{Δ_k}, Δ_k = t_{k+1} − t_k (semi-MDP):

    R_k = Σ_{t=t_k}^{t_{k+1}−1} γ^{t−t_k} r_{t,i},   δ_k = R_k + γ^{Δ_k} V_{k+1} − V_k,
    A_k = δ_k + (γλ)^{Δ_k} A_{k+1},                  V_K = 0 at the horizon (truncation is
    part of the state through the time feature).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch_geometric.data import Batch

from swarmgames.core.rng import SeedStreams
from swarmgames.fleet.hetgraph import vertiport_types
from swarmgames.fleet.policy import FleetPolicy
from swarmgames.fleet.train.config import AamRunConfig
from swarmgames.fleet.train.rollout import Episode, run_episodes


def semi_mdp_gae(times: np.ndarray, rewards: np.ndarray, values: np.ndarray, horizon: int,
                 gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and return targets of one agent's decisions at ``times`` (sorted step
    indices), from its per-step rewards (length ``horizon``) and values V_k at the decisions."""
    k = len(times)
    adv = np.zeros(k)
    nxt_v, nxt_a = 0.0, 0.0
    for j in range(k - 1, -1, -1):
        t0 = times[j]
        t1 = times[j + 1] if j + 1 < k else horizon
        disc = gamma ** np.arange(t1 - t0)
        r = float((rewards[t0:t1] * disc).sum())
        dt = t1 - t0
        boot = gamma ** dt * nxt_v if j + 1 < k else 0.0
        delta = r + boot - values[j]
        adv[j] = delta + ((gamma * lam) ** dt * nxt_a if j + 1 < k else 0.0)
        nxt_v, nxt_a = values[j], adv[j]
    return adv, adv + values


def gae_targets(eps: list[Episode], values: dict[tuple[int, int], np.ndarray], scale: float,
                gamma: float, lam: float
                ) -> tuple[dict[tuple[int, int], np.ndarray], dict[tuple[int, int], np.ndarray]]:
    """Advantages and return targets keyed by (episode, step), one entry per decider of that
    step: each agent's decisions are chained by :func:`semi_mdp_gae` over its own rewards
    (× ``scale``); ``values[(e, t)]`` holds the critic's values of those deciders."""
    adv: dict[tuple[int, int], np.ndarray] = {}
    ret: dict[tuple[int, int], np.ndarray] = {}
    for e, ep in enumerate(eps):
        r = np.asarray(ep.rewards) * scale
        horizon = len(ep.rewards)
        for i in range(r.shape[1]):
            times = [t for t in range(horizon) if (e, t) in values
                     and i in set(ep.deciders[t].tolist())]
            if not times:
                continue
            pos = [int(np.flatnonzero(ep.deciders[t] == i)[0]) for t in times]
            v = np.array([values[(e, t)][p] for t, p in zip(times, pos, strict=True)])
            a, g = semi_mdp_gae(np.array(times), r[:, i], v, horizon, gamma, lam)
            for t, p, aa, gg in zip(times, pos, a, g, strict=True):
                adv.setdefault((e, t), np.zeros(len(ep.deciders[t])))[p] = aa
                ret.setdefault((e, t), np.zeros(len(ep.deciders[t])))[p] = gg
    return adv, ret


def _batch(eps: list[Episode], idx: list[tuple[int, int]], critic: bool):
    """Batch the graphs of (episode, step) pairs; global decider indices and flat keys."""
    gs = [eps[e].graphs[t] for e, t in idx]
    b = Batch.from_data_list(gs)
    bc = Batch.from_data_list([eps[e].critic_graphs[t] for e, t in idx]) if critic else None
    ptr = b["vehicle"].ptr
    sel = torch.cat([torch.as_tensor(eps[e].deciders[t], dtype=torch.long) + ptr[k]
                     for k, (e, t) in enumerate(idx)])
    return b, bc, sel


def _masked_entropy(logits: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits, -1)
    finite = torch.isfinite(logits)
    logp = logp.masked_fill(~finite, 0.0)  # 0·(−inf) would poison the gradient with NaN
    return -(logp.exp() * logp * finite).sum(-1)


@dataclass
class TrainResult:
    policy: FleetPolicy
    curve: list[dict[str, float]]
    imitation: dict[str, float] = field(default_factory=dict)


class Trainer:
    """Trains a :class:`FleetPolicy` on ``cfg.env`` with training seed ``cfg.seed``."""

    def __init__(self, cfg: AamRunConfig, log: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.log = log or (lambda s: None)
        torch.manual_seed(cfg.seed)
        self.streams = SeedStreams(cfg.seed, ("init", "episodes", "sampling"))
        from swarmgames.fleet.sim import AamSim  # vp types need a sim of this config

        vp = vertiport_types(AamSim(cfg.env, 0))
        n_f = len(cfg.env.fleets)
        self.policy = FleetPolicy(cfg.policy, vp, n_f)
        self.opt = torch.optim.Adam(self.policy.parameters(), lr=cfg.train.lr)
        self.gen = torch.Generator().manual_seed(int(self.streams["sampling"].integers(2**31)))
        self.baseline = copy.deepcopy(self.policy) if cfg.train.algo == "reinforce" else None

    def _episode_seeds(self) -> list[int]:
        n = self.cfg.train.episodes_per_iter
        return [int(s) for s in self.streams["episodes"].integers(0, 2**31 - 1, size=n)]

    # ------------------------------------------------------------------ PPO
    def _ppo_iteration(self, eps: list[Episode]) -> dict[str, float]:
        tc, pol = self.cfg.train, self.policy
        critic = pol.cfg.critic == "mappo"
        steps = [(e, t) for e, ep in enumerate(eps) for t in range(len(ep.graphs))
                 if len(ep.deciders[t])]
        if not steps:
            return {}
        # minibatches: a random partition of the steps, collated once and reused by the value
        # pass and every epoch (collation dominates the CPU time otherwise)
        rng = self.streams["sampling"]
        order = rng.permutation(len(steps))
        chunks = [[steps[j] for j in order[s: s + tc.minibatch_steps]]
                  for s in range(0, len(steps), tc.minibatch_steps)]
        batches = [_batch(eps, c, critic) for c in chunks]
        with torch.no_grad():
            vals = {}
            for chunk, (b, bc, sel) in zip(chunks, batches, strict=True):
                v = pol.values(b, sel, bc).numpy()
                o = 0
                for e, t in chunk:
                    n = len(eps[e].deciders[t])
                    vals[(e, t)] = v[o: o + n]
                    o += n
        adv, ret = gae_targets(eps, vals, tc.reward_scale, tc.gamma, tc.gae_lambda)
        flat = np.concatenate([adv[k] for k in steps])
        mu, sd = flat.mean(), flat.std() + 1e-8
        stats = []
        for _ in range(tc.epochs):
            for j in rng.permutation(len(chunks)):
                chunk, (b, bc, sel) = chunks[j], batches[j]
                act = torch.as_tensor(np.concatenate([eps[e].actions[t] for e, t in chunk]))
                old = torch.as_tensor(np.concatenate([eps[e].logp[t] for e, t in chunk]),
                                      dtype=torch.float32)
                A = torch.as_tensor((np.concatenate([adv[k] for k in chunk]) - mu) / sd,
                                    dtype=torch.float32)
                R = torch.as_tensor(np.concatenate([ret[k] for k in chunk]),
                                    dtype=torch.float32)
                h = pol.embed(b)
                logits = pol.logits(b, sel, h)
                lp = torch.log_softmax(logits, -1).gather(1, act[:, None]).squeeze(-1)
                ratio = (lp - old).exp()
                pg = -torch.min(ratio * A, ratio.clamp(1 - tc.clip, 1 + tc.clip) * A).mean()
                ent = _masked_entropy(logits).mean()
                v = pol.values(b, sel, bc, h)
                vloss = ((v - R) ** 2).mean()
                loss = pg - tc.entropy * ent + tc.value_coef * vloss
                self.opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(pol.parameters(), tc.grad_clip)
                self.opt.step()
                stats.append((pg.item(), vloss.item(), ent.item()))
        s = np.mean(stats, axis=0)
        return {"pg_loss": float(s[0]), "v_loss": float(s[1]), "entropy": float(s[2])}

    # ------------------------------------------------------------------ imitation warm start
    def imitate(self) -> dict[str, float]:
        """Behaviour cloning of ``train.imitate`` (a heuristic that only uses what the vehicle
        observes) plus a critic fitted to the teacher's semi-MDP returns, so that RL starts
        from the heuristic's play instead of a uniform policy."""
        tc, pol = self.cfg.train, self.policy
        critic = pol.cfg.critic == "mappo"
        seeds = [int(s) for s in self.streams["episodes"].integers(0, 2**31 - 1,
                                                                   size=tc.imitate_episodes)]
        eps = run_episodes(self.cfg.env, seeds, pol, serve_bonus=tc.serve_bonus,
                           teacher=tc.imitate)
        steps = [(e, t) for e, ep in enumerate(eps) for t in range(len(ep.graphs))
                 if len(ep.deciders[t])]
        zeros = {(e, t): np.zeros(len(eps[e].deciders[t])) for e, t in steps}
        _, ret = gae_targets(eps, zeros, tc.reward_scale, tc.gamma, 1.0)   # Monte Carlo returns
        rng = self.streams["sampling"]
        chunks = [[steps[j] for j in c] for c in np.array_split(
            rng.permutation(len(steps)), max(1, len(steps) // tc.minibatch_steps))]
        batches = [_batch(eps, c, critic) for c in chunks]
        stats = []
        for _ in range(tc.imitate_epochs):
            for j in rng.permutation(len(chunks)):
                chunk, (b, bc, sel) = chunks[j], batches[j]
                act = torch.as_tensor(np.concatenate([eps[e].actions[t] for e, t in chunk]))
                R = torch.as_tensor(np.concatenate([ret[k] for k in chunk]), dtype=torch.float32)
                h = pol.embed(b)
                logits = pol.logits(b, sel, h)
                ce = -torch.log_softmax(logits, -1).gather(1, act[:, None]).mean()
                acc = (logits.argmax(-1) == act).float().mean()
                vloss = ((pol.values(b, sel, bc, h) - R) ** 2).mean()
                loss = ce + tc.value_coef * vloss
                self.opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(pol.parameters(), tc.grad_clip)
                self.opt.step()
                stats.append((ce.item(), acc.item(), vloss.item()))
        if not stats:
            return {}
        first, last = np.mean(stats[: len(chunks)], 0), np.mean(stats[-len(chunks):], 0)
        return {"imitation_ce_first": float(first[0]), "imitation_ce": float(last[0]),
                "imitation_accuracy": float(last[1]), "imitation_v_loss": float(last[2])}

    # ------------------------------------------------------------------ REINFORCE
    def _reinforce_iteration(self, eps: list[Episode], seeds: list[int]) -> dict[str, float]:
        tc, pol = self.cfg.train, self.policy
        ret = [np.asarray(ep.rewards).sum(0) * tc.reward_scale for ep in eps]  # (N,) each
        if tc.baseline == "rollout":
            base_eps = run_episodes(self.cfg.env, seeds, self.baseline, greedy=True,
                                    record=False, serve_bonus=tc.serve_bonus)
            base = [np.asarray(b.rewards).sum(0) * tc.reward_scale for b in base_eps]
        else:
            m = float(np.mean(np.concatenate(ret)))
            base = [np.full_like(r, m) for r in ret]
        steps = [(e, t) for e, ep in enumerate(eps) for t in range(len(ep.graphs))
                 if len(ep.deciders[t])]
        if not steps:
            return {}
        self.opt.zero_grad()
        total = sum(len(eps[e].deciders[t]) for e, t in steps)
        for s in range(0, len(steps), tc.minibatch_steps):
            chunk = steps[s: s + tc.minibatch_steps]
            b, _, sel = _batch(eps, chunk, False)
            act = torch.as_tensor(np.concatenate([eps[e].actions[t] for e, t in chunk]))
            A = torch.as_tensor(np.concatenate(
                [(ret[e] - base[e])[eps[e].deciders[t]] for e, t in chunk]), dtype=torch.float32)
            logits = pol.logits(b, sel)
            lp = torch.log_softmax(logits, -1).gather(1, act[:, None]).squeeze(-1)
            loss = (-(A * lp).sum() - tc.entropy * _masked_entropy(logits).sum()) / total
            loss.backward()
        torch.nn.utils.clip_grad_norm_(pol.parameters(), tc.grad_clip)
        self.opt.step()
        gain = float(np.mean(np.concatenate(ret)) - np.mean(np.concatenate(base)))
        if tc.baseline == "rollout" and gain > 0:
            self.baseline.load_state_dict(pol.state_dict())
        return {"return_minus_baseline": gain}

    # ------------------------------------------------------------------ loop
    def train(self) -> TrainResult:
        tc = self.cfg.train
        curve = []
        t0, c0 = time.time(), time.process_time()
        warm = self.imitate() if tc.imitate != "none" else {}
        if warm:
            self.log(f"imitated {tc.imitate}: cross-entropy {warm['imitation_ce_first']:.3f} -> "
                     f"{warm['imitation_ce']:.3f}, accuracy {warm['imitation_accuracy']:.3f}")
        for it in range(tc.iterations):
            seeds = self._episode_seeds()
            eps = run_episodes(self.cfg.env, seeds, self.policy, greedy=False, gen=self.gen,
                               serve_bonus=tc.serve_bonus)
            if tc.algo == "ppo":
                stats = self._ppo_iteration(eps)
            else:
                stats = self._reinforce_iteration(eps, seeds)
            row = {"iteration": it + 1, "time_s": time.time() - t0,
                   "cpu_s": time.process_time() - c0,
                   "fleet_reward": float(np.mean([e.metrics["fleet_reward"] for e in eps])),
                   "fulfilment_ratio": float(np.mean([e.metrics["fulfilment_ratio"]
                                                      for e in eps])),
                   "conflict_rate": float(np.mean([e.metrics["conflict_rate"] for e in eps])),
                   **stats}
            curve.append(row)
            if (it + 1) % tc.log_every == 0:
                self.log(f"iter {it + 1:4d}  t={row['time_s']:.0f}s  reward "
                         f"{row['fleet_reward']:8.1f}  FR {row['fulfilment_ratio']:.3f}  "
                         f"conflicts {row['conflict_rate']:.3f}")
            if tc.time_budget_s > 0 and row["cpu_s"] >= tc.time_budget_s:
                break   # equal compute: CPU seconds of this process (fair on a shared machine)
        return TrainResult(self.policy, curve, warm)
