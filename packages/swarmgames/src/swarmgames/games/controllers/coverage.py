"""CoCo controllers (§5.3, §5.4): mean-field VI on the cooperative stage game (``coco``,
executing the mode of q or a sample), exact centralised coordinate ascent on J
(``execution: sequential``), the comm-unaware Lloyd/CVT baseline (``lloyd``) and two
communication-aware baselines (``lloyd_connected``: Lloyd under a spanning-tree connectivity
constraint; ``relay_lattice``: a static triangular relay lattice on the ROI).  They read the
simulator's ``p``, ``roi``, ``rng``, ``candidates()``, ``objective()``, ``channel`` and
``links``."""

from __future__ import annotations

from typing import Any

import numpy as np

from swarmgames.core.kinematics import step_toward
from swarmgames.games.config import CocoConfig
from swarmgames.games.controllers.base import Controller, Decision, WarmStartVI, solver_info
from swarmgames.games.controllers.lloyd import lloyd_targets
from swarmgames.games.controllers.relay import connected_lloyd_step, relay_lattice_targets
from swarmgames.games.payoffs_coverage import link_keeping_pairs
from swarmgames.games.solvers.config import SolverConfig
from swarmgames.games.solvers.mean_field_vi import colour_classes
from swarmgames.games.stage_game import StageGame

MAX_CLASSES = 16


def settle(sim: Any, game: StageGame, labels: np.ndarray, tolerance: float = 0.0) -> np.ndarray:
    """Labels of a proposal restricted so that the exact team objective J does not drop
    (by more than ``tolerance``).

    The simultaneous VI proposal is executed whole if J after the move is at least J now
    minus ``tolerance`` (0 by default);
    otherwise the best single colour class of the interaction graph (an independent set of
    neighbours) that raises J moves alone; otherwise every UAV stays (label 0).  With
    stationary UEs the ROI, hence J, is a fixed function of the positions, so J is
    non-decreasing from stage to stage and, being bounded, converges: the period-2
    oscillation of simultaneous execution cannot occur.  The check needs J, i.e. one
    evaluation of the coverage over the ROI per candidate set (centralised, like
    ``execution: sequential``).  Only the ``MAX_CLASSES`` largest colour classes are tried,
    which bounds the cost in a dense swarm (N = 1000 launched together has 1000 singleton
    classes) and changes nothing with at most that many classes."""
    stay = np.zeros_like(labels)
    cand = sim.candidates()
    reach = sim.cfg.v_max * sim.cfg.dt

    def value(lab: np.ndarray) -> float:
        targets = cand[np.arange(sim.n), lab]
        return sim.objective(step_toward(sim.p, targets, reach))

    now = sim.objective()
    if value(labels) >= now - tolerance:
        return labels
    best, best_val = stay, now
    classes = sorted(colour_classes(game.nbr), key=len, reverse=True)[:MAX_CLASSES]
    for rows in classes:
        trial = stay.copy()
        trial[rows] = labels[rows]
        val = value(trial)
        if val > best_val + 1e-12:
            best, best_val = trial, val
    return best


CYCLE_LENGTHS = (2, 3, 4)


def annealed_tolerance(stage: int, tolerance: float, stages: int) -> float:
    """Threshold-accepting schedule (Dueck & Scheuer 1990): the largest J drop a joint move may
    cause at ``stage``, falling linearly from ``tolerance`` to 0 at ``stages`` and 0 after."""
    return tolerance * max(0.0, 1.0 - stage / stages) if stages > 0 else 0.0


def refuse_undo(targets: np.ndarray, left: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Labels with every move that returns a UAV to the position it last left (``left``,
    NaN before its first move) replaced by 'stay' (label 0): the hysteresis that removes
    the period-2 oscillation of simultaneous execution (A → B → A)."""
    back = np.linalg.norm(targets - left, axis=1) < 1e-3
    return np.where(back, 0, labels)


class CocoVI(WarmStartVI):
    """Mean-field VI (warm-started from the previous stage's q) → waypoint labels: the mode
    of q, or a sample from it with ``sample``.

    ``settling``: ``off``; ``always`` restricts every move by :func:`settle`; ``on_cycle``
    executes VI freely until the swarm oscillates -- its positions repeat those of 2-4 stages
    before, or J has alternately risen and fallen over the last ``alternations`` stages (the
    period-2 oscillation of simultaneous execution, measured with stationary UEs) -- and
    from then on restricts every move by :func:`settle`.  ``always`` pins a launch cluster in
    place, because J's link term over all pairs is largest for a cluster; ``on_cycle`` lets
    the swarm deploy first.

    ``anneal`` (the default) removes the cause of the oscillation and then guarantees the
    property: (1) hysteresis -- a UAV never moves straight back to the position it last left
    (:func:`refuse_undo`; the period-2 cycle is the whole swarm swinging between two
    configurations whose neighbour sets differ, so each stage's game undoes the last move),
    and (2) threshold accepting -- a joint move may lower J by at most a tolerance that falls
    linearly from ``tolerance`` to 0 at stage ``anneal_stages`` (:func:`annealed_tolerance`),
    so the swarm can cross the small J dips that deployment needs early on and J is
    non-decreasing from ``anneal_stages`` on (with stationary UEs)."""

    def __init__(self, solver: SolverConfig, sample: bool = False,
                 settling: str = "off", alternations: int = 16, tolerance: float = 0.0,
                 anneal_stages: int = 0) -> None:
        super().__init__(solver)
        self.sample = sample
        self.settling = settling
        self.alternations = alternations
        self.tolerance = tolerance
        self.anneal_stages = anneal_stages
        self.committed = settling == "always"
        self.past: list[np.ndarray] = []
        self.values: list[float] = []
        self.left: np.ndarray | None = None

    def reset(self) -> None:
        super().reset()
        self.committed = self.settling == "always"
        self.past = []
        self.values = []
        self.left = None

    def _watch_cycle(self, p: np.ndarray, value: float) -> None:
        """Commit once the positions equal those of 2-4 stages ago (within 1 mm) or the last
        ``alternations`` changes of J alternate in sign."""
        self.past = (self.past + [p.copy()])[-(max(CYCLE_LENGTHS) + 1):]
        self.values = (self.values + [value])[-(self.alternations + 1):]
        moved = len(self.past) > 1 and not np.allclose(self.past[-1], self.past[-2], atol=1e-3)
        for c in CYCLE_LENGTHS:
            if moved and len(self.past) > c and np.allclose(p, self.past[-1 - c], atol=1e-3):
                self.committed = True
        sign = np.sign(np.diff(self.values))
        if len(sign) == self.alternations and (sign != 0).all() and (sign[1:] != sign[:-1]).all():
            self.committed = True

    def decide(self, sim: Any, game: StageGame | None) -> Decision:
        res = self.solve(game)
        if self.sample:
            pol = sim.rng["policy"]
            labels = np.array([pol.choice(sim.n_labels, p=row) for row in res.q])
        else:
            labels = res.profile
        if self.settling == "on_cycle" and not self.committed:
            self._watch_cycle(sim.p, sim.objective())
        if self.committed:
            labels = settle(sim, game, labels)
        elif self.settling == "anneal":
            labels = self._anneal(sim, game, labels)
        targets = sim.candidates()[np.arange(sim.n), labels]
        return Decision(labels=labels, targets=targets, info=solver_info(res))

    def _anneal(self, sim: Any, game: StageGame, labels: np.ndarray) -> np.ndarray:
        """Hysteresis, then the annealed J acceptance; remembers where each mover left."""
        if self.left is None or self.left.shape != sim.p.shape:
            self.left = np.full_like(sim.p, np.nan)
        cand = sim.candidates()
        labels = refuse_undo(cand[np.arange(sim.n), labels], self.left, labels)
        labels = settle(sim, game, labels,
                        annealed_tolerance(sim.k, self.tolerance, self.anneal_stages))
        targets = cand[np.arange(sim.n), labels]
        moved = np.linalg.norm(targets - sim.p, axis=1) > 1e-3
        self.left[moved] = sim.p[moved]
        return labels


class SequentialAscent:
    """One UAV at a time moves to the candidate maximising the exact objective J given the
    others' current positions (centralised; J never decreases within a stage)."""

    needs_game = False

    def reset(self) -> None:
        """Stateless."""

    def decide(self, sim: Any, game: StageGame | None) -> Decision:
        cand = sim.candidates()
        pos = sim.p.copy()
        for i in range(sim.n):
            vals = []
            for c in cand[i]:
                trial = pos.copy()
                trial[i] = c
                vals.append(sim.objective(trial))
            vals = np.array(vals)
            best = int(np.argmax(vals))
            if vals[best] > vals[0] + 1e-12:  # label 0 is 'stay' (keeps J on ties)
                pos[i] = cand[i, best]
        return Decision(targets=pos)


class Lloyd:
    """Lloyd/CVT: move toward the weighted centroid of the own Voronoi cell of the ROI."""

    needs_game = False

    def reset(self) -> None:
        """Stateless."""

    def decide(self, sim: Any, game: StageGame | None) -> Decision:
        return Decision(targets=lloyd_targets(sim.p, sim.roi.points, sim.roi.weights))


class ConnectedLloyd:
    """Lloyd/CVT whose moves keep a maximum-RSS spanning forest of the current backbone
    within ``range_fraction`` of the link range (see ``relay.connected_lloyd_step``)."""

    needs_game = False

    def __init__(self, range_fraction: float) -> None:
        self.range_fraction = range_fraction

    def reset(self) -> None:
        """Stateless."""

    def decide(self, sim: Any, game: StageGame | None) -> Decision:
        adj, rx = sim.links
        tree = link_keeping_pairs("tree", adj & adj.T, rx)
        goal = lloyd_targets(sim.p, sim.roi.points, sim.roi.weights)
        keep = self.range_fraction * sim.channel.range_m()
        return Decision(targets=connected_lloyd_step(sim.p, goal, tree,
                                                     sim.cfg.v_max * sim.cfg.dt, keep))


class RelayLattice:
    """Fly to a triangular lattice of spacing ``range_fraction`` × link range centred on the
    ROI mean (see ``relay.relay_lattice_targets``)."""

    needs_game = False

    def __init__(self, range_fraction: float) -> None:
        self.range_fraction = range_fraction

    def reset(self) -> None:
        """Stateless."""

    def decide(self, sim: Any, game: StageGame | None) -> Decision:
        spacing = self.range_fraction * sim.channel.range_m()
        return Decision(targets=relay_lattice_targets(sim.p, sim.roi.mean, spacing,
                                                      sim.cfg.area_m))


def coco_controller(cfg: CocoConfig) -> Controller:
    """The controller named by ``cfg.controller`` / ``cfg.execution``."""
    if cfg.controller == "lloyd":
        return Lloyd()
    if cfg.controller == "lloyd_connected":
        return ConnectedLloyd(cfg.baseline_range_fraction)
    if cfg.controller == "relay_lattice":
        return RelayLattice(cfg.baseline_range_fraction)
    if cfg.execution == "sequential":
        return SequentialAscent()
    return CocoVI(cfg.solver, sample=cfg.execution == "sample",
                  settling=cfg.settle, alternations=cfg.settle_alternations,
                  tolerance=cfg.settle_tolerance, anneal_stages=cfg.settle_anneal_stages)
