"""Lock-step rollouts of several AAM episodes with one batched policy forward per step
(design note §3.3 "Efficiency", §3.6 ``Batch.from_data_list``).

Only vehicles with more than one feasible action decide (idle vehicles at a vertiport); the
others execute the only feasible action (wait).  Recorded per step: the observation graph, the
full-information graph for the MAPPO critic, deciders, actions and their log-probabilities,
and the training reward: the env reward plus ``serve_bonus`` per credited pick-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch_geometric.data import Batch, HeteroData

from swarmgames.fleet.config import AamConfig
from swarmgames.fleet.hetgraph import build_graph
from swarmgames.fleet.heuristics import make_heuristic
from swarmgames.fleet.policy import FleetPolicy
from swarmgames.fleet.sim import AamSim


@dataclass
class Episode:
    """One recorded episode: per step graphs and decisions, rewards (T, N), final metrics."""

    graphs: list[HeteroData] = field(default_factory=list)
    critic_graphs: list[HeteroData] = field(default_factory=list)
    deciders: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    logp: list[np.ndarray] = field(default_factory=list)
    rewards: list[np.ndarray] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    fleet: np.ndarray | None = None


def sample_actions(logits: torch.Tensor, greedy: bool, gen: torch.Generator | None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy or sampled actions and their log-probabilities (masked entries have p = 0)."""
    logp = torch.log_softmax(logits, -1)
    if greedy:
        a = logits.argmax(-1)
    else:
        a = torch.multinomial(logp.exp(), 1, generator=gen).squeeze(-1)
    return a, logp.gather(1, a[:, None]).squeeze(-1)


@torch.no_grad()
def run_episodes(cfg: AamConfig, seeds: list[int], policy: FleetPolicy, greedy: bool = False,
                 gen: torch.Generator | None = None, record: bool = True,
                 serve_bonus: float = 0.0, teacher: str | None = None) -> list[Episode]:
    """Run one episode per seed in lock-step; returns the recorded episodes.  With ``teacher``
    (a heuristic of ``aam_heuristics``) the heuristic acts instead of the policy and the
    recorded log-probabilities are zeros: the data of the imitation warm start."""
    sims = [AamSim(cfg, s) for s in seeds]
    eps = [Episode(fleet=s.fleet.copy()) for s in sims]
    mappo = policy.cfg.critic == "mappo"
    teachers = ([make_heuristic(teacher, np.random.default_rng([s, 11])) for s in seeds]
                if teacher is not None else None)
    while not sims[0].done:
        graphs = [build_graph(s) for s in sims]
        deciders = [np.flatnonzero(s.mask.sum(1) > 1) for s in sims]
        acts = [np.full(s.n, s.wait_action) for s in sims]
        if teachers is not None:
            for k, (s, d) in enumerate(zip(sims, deciders, strict=True)):
                acts[k] = teachers[k](s)
                if record:
                    eps[k].actions.append(acts[k][d].copy())
                    eps[k].logp.append(np.zeros(len(d)))
        elif any(len(d) for d in deciders):
            b = Batch.from_data_list(graphs)
            ptr = b["vehicle"].ptr
            sel = torch.cat([torch.as_tensor(d, dtype=torch.long) + ptr[k]
                             for k, d in enumerate(deciders)])
            a, lp = sample_actions(policy.logits(b, sel), greedy, gen)
            a, lp = a.numpy(), lp.numpy()
            start = 0
            for k, d in enumerate(deciders):
                acts[k][d] = a[start: start + len(d)]
                if record:
                    eps[k].actions.append(a[start: start + len(d)].copy())
                    eps[k].logp.append(lp[start: start + len(d)].copy())
                start += len(d)
        elif record:
            for e in eps:
                e.actions.append(np.zeros(0, dtype=int))
                e.logp.append(np.zeros(0))
        for k, s in enumerate(sims):
            if record:
                eps[k].graphs.append(graphs[k])
                eps[k].deciders.append(deciders[k])
                if mappo:
                    eps[k].critic_graphs.append(build_graph(s, full=True))
            s.step(acts[k])
            eps[k].rewards.append(s.last_agent_rewards + serve_bonus * s.last_agent_pickups)
    for e, s in zip(eps, sims, strict=True):
        e.metrics = s.metrics()
    return eps


def policy_actor(policy: FleetPolicy, greedy: bool = True, gen: torch.Generator | None = None):
    """A ``sim -> actions`` callable running the learned policy on one simulator."""

    @torch.no_grad()
    def act(sim: AamSim) -> np.ndarray:
        a = np.full(sim.n, sim.wait_action)
        dec = np.flatnonzero(sim.mask.sum(1) > 1)
        if len(dec):
            g = build_graph(sim)
            out, _ = sample_actions(policy.logits(g, torch.as_tensor(dec)), greedy, gen)
            a[dec] = out.numpy()
        return a

    return act
