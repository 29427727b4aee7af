"""Heuristic AAM fleet policies on the simulator state (design note §3.5).

* ``random``: uniform over feasible actions (the policy stream);
* ``greedy_nearest``: serve the oldest feasible request here, else reposition to the nearest
  observed vertiport with open requests, else wait/charge;
* ``greedy_profit``: serve the request with the best (fare − cost·dist)/trip time, else reposition
  to the observed vertiport with the best expected profit per km, else wait/charge;
* ``hungarian``: centralised assignment of idle vehicles to *all* open requests by
  ``scipy.optimize.linear_sum_assignment`` on fare − cost·(deadhead + trip) with full information
  (an optimistic reference; evaluate it with ``topology: full`` so that every reposition is
  allowed).

Each is a callable ``policy(sim) -> (N,) actions`` that only returns feasible actions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import linear_sum_assignment

from swarmgames.fleet.sim import IDLE, PENDING, AamSim

Policy = Callable[[AamSim], np.ndarray]


def random_policy(rng: np.random.Generator) -> Policy:
    """Uniform over each vehicle's feasible actions."""

    def act(sim: AamSim) -> np.ndarray:
        return np.array([rng.choice(np.flatnonzero(m)) for m in sim.action_masks()])

    return act


def _reposition(sim: AamSim, i: int, score: np.ndarray) -> int:
    """Best feasible reposition slot by ``score`` over vertiports (−inf = never), else wait."""
    feas = sim.mask[i, sim.M: sim.M + sim.V]
    s = np.where(feas, score, -np.inf)
    return sim.M + int(np.argmax(s)) if np.isfinite(s.max()) else sim.wait_action


def _queue_value(sim: AamSim) -> tuple[np.ndarray, np.ndarray]:
    pend = sim.r_status == PENDING
    count = np.bincount(sim.r_o[pend], minlength=sim.V).astype(float)
    value = np.bincount(sim.r_o[pend], weights=sim.r_fare[pend], minlength=sim.V)
    return count, value


def greedy_nearest(sim: AamSim) -> np.ndarray:
    """Oldest feasible request here; else nearest observed vertiport with a queue."""
    a = np.full(sim.n, sim.wait_action)
    count, _ = _queue_value(sim)
    for i in np.flatnonzero(sim.status == IDLE):
        ok = np.flatnonzero(sim.mask[i, : sim.M])
        if len(ok):
            a[i] = ok[0]
            continue
        d = sim.dist[sim.loc[i]]
        a[i] = _reposition(sim, i, np.where(count > 0, -d, -np.inf))
    return a


def greedy_profit(sim: AamSim) -> np.ndarray:
    """Max (fare − cost·dist)/time request here; else the best queue value per km."""
    a = np.full(sim.n, sim.wait_action)
    _, value = _queue_value(sim)
    for i in np.flatnonzero(sim.status == IDLE):
        v = sim.loc[i]
        ok = np.flatnonzero(sim.mask[i, : sim.M])
        if len(ok):
            req = sim.slots[i, ok]
            dist = sim.dist[v, sim.r_d[req]]
            gain = (sim.r_fare[req] - sim.cost_km[i] * dist) / np.maximum(
                np.ceil(dist / sim.speed[i]), 1)
            if gain.max() > 0:
                a[i] = ok[int(np.argmax(gain))]
                continue
        d = sim.dist[v]
        score = np.where(value > 0, value - sim.cost_km[i] * d, -np.inf) / np.maximum(d, 1.0)
        a[i] = _reposition(sim, i, np.where(score > 0, score, -np.inf))
    return a


def hungarian(sim: AamSim) -> np.ndarray:
    """Centralised full-information assignment of idle vehicles to open requests (§3.5)."""
    a = np.full(sim.n, sim.wait_action)
    idle = np.flatnonzero(sim.status == IDLE)
    reqs = np.flatnonzero(sim.r_status == PENDING)
    if len(idle) == 0 or len(reqs) == 0:
        return a
    W = sim.cfg.demand.patience
    profit = np.full((len(idle), len(reqs)), -1e9)
    for x, i in enumerate(idle):
        v = sim.loc[i]
        dead = sim.dist[v, sim.r_o[reqs]]
        trip = sim.dist[sim.r_o[reqs], sim.r_d[reqs]]
        eta = np.ceil(dead / sim.speed[i] - 1e-9)
        ok = ((sim.r_q[reqs] <= sim.capacity[i]) & (dead + trip <= sim.soc[i] + 1e-9)
              & (sim.t + eta - sim.r_t[reqs] < W))
        val = sim.r_fare[reqs] - sim.cost_km[i] * (dead + trip)
        profit[x] = np.where(ok & (val > 0), val, -1e9)
    rows, cols = linear_sum_assignment(-profit)
    for x, y in zip(rows, cols, strict=True):
        if profit[x, y] <= -1e9:
            continue
        i, req = idle[x], reqs[y]
        if sim.r_o[req] == sim.loc[i]:
            slot = np.flatnonzero(sim.slots[i] == req)
            if len(slot) and sim.mask[i, slot[0]]:
                a[i] = slot[0]
        elif sim.mask[i, sim.M + sim.r_o[req]]:
            a[i] = sim.M + sim.r_o[req]
    return a


HEURISTICS = ("random", "greedy_nearest", "greedy_profit", "hungarian")


def make_heuristic(name: str, rng: np.random.Generator) -> Policy:
    """Heuristic policy by name (``HEURISTICS``)."""
    if name == "random":
        return random_policy(rng)
    table = {"greedy_nearest": greedy_nearest, "greedy_profit": greedy_profit,
             "hungarian": hungarian}
    if name not in table:
        raise ValueError(f"unknown heuristic {name!r}; known: {HEURISTICS}")
    return table[name]
