"""Scenario configs of the two graphical-game systems (flocking §4, CoCo §5).

They sit below both the simulators and the controllers: a simulator reads its scenario from
here and receives its controller as an object (``games.build`` pairs the two from the config's
``controller`` name), so no simulator imports a controller module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swarmgames.core.channel import ChannelConfig
from swarmgames.core.commgraph import CommConfig
from swarmgames.core.config import check
from swarmgames.core.mobility import MobilityConfig
from swarmgames.core.obstacles import ObstacleConfig
from swarmgames.games.payoffs_coverage import CoverageWeights, RoiConfig
from swarmgames.games.payoffs_flocking import FlockPayoffConfig
from swarmgames.games.solvers.config import SolverConfig

FLOCK_CONTROLLERS = ("game", "vi", "greedy", "reynolds")
COCO_CONTROLLERS = ("coco", "lloyd", "lloyd_connected", "relay_lattice")
COCO_EXECUTIONS = ("mode", "sample", "sequential")
COCO_SETTLE = ("off", "on_cycle", "always", "anneal")


@dataclass(frozen=True)
class GoalConfig:
    """Desired motion: a migration ``velocity`` or a ``point`` approached at ``speed``.

    ``spread`` perturbs each agent's desired velocity by U[−spread, spread] per axis (layout
    stream): individual goals make the game general-sum."""

    mode: str = "velocity"
    velocity: tuple[float, float] = (2.0, 1.0)
    point: tuple[float, float] = (400.0, 200.0)
    speed: float = 3.0
    slow_radius_m: float = 40.0
    spread: float = 0.3

    def __post_init__(self) -> None:
        check(self.mode in ("velocity", "point"), "mode", "must be 'velocity' or 'point'")
        check(self.speed >= 0, "speed", "must be >= 0")
        check(self.slow_radius_m > 0, "slow_radius_m", "must be > 0")
        check(self.spread >= 0, "spread", "must be >= 0")


@dataclass(frozen=True)
class ReynoldsConfig:
    """Gains of the rule-based flocking baseline (``controller: reynolds``)."""

    k_sep: float = 1.0
    k_coh: float = 0.02
    k_ali: float = 0.5
    k_mig: float = 0.5
    d_sep_m: float = 8.0

    def __post_init__(self) -> None:
        for k in ("k_sep", "k_coh", "k_ali", "k_mig", "d_sep_m"):
            check(getattr(self, k) >= 0, k, "must be >= 0")


@dataclass(frozen=True)
class FlockConfig:
    """The flocking scenario (defaults: 8 UAVs, 25 labels, n = 2.4 channel, −85 dBm links).

    ``obstacles`` (none by default) places seeded discs on the route: they enter the payoff
    (``payoff.w_obstacle``, ``payoff.d_obs_m``) and attenuate links whose line of sight they
    cross (``obstacles.blockage_db``)."""

    n_agents: int = 8
    steps: int = 300
    dt: float = 0.5
    u_max: float = 1.0
    v_max: float = 5.0
    label_levels: int = 5
    horizon: int = 1
    spacing_m: float = 15.0
    init_speed: float = 1.0
    d_safe_m: float = 3.0
    controller: str = "game"
    certify: bool = True
    goal: GoalConfig = field(default_factory=GoalConfig)
    payoff: FlockPayoffConfig = field(default_factory=FlockPayoffConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    reynolds: ReynoldsConfig = field(default_factory=ReynoldsConfig)
    channel: ChannelConfig = field(default_factory=ChannelConfig)
    comm: CommConfig = field(default_factory=CommConfig)
    obstacles: ObstacleConfig = field(default_factory=ObstacleConfig)

    def __post_init__(self) -> None:
        check(self.n_agents >= 1, "n_agents", "must be >= 1")
        check(self.steps >= 1, "steps", "must be >= 1")
        check(self.dt > 0, "dt", "must be > 0")
        check(self.u_max > 0, "u_max", "must be > 0")
        check(self.v_max > 0, "v_max", "must be > 0")
        check(self.label_levels >= 2, "label_levels", "must be >= 2")
        check(1 <= self.horizon <= 3, "horizon", "must be 1, 2 or 3")
        check(self.label_levels ** (2 * self.horizon) <= 1000, "horizon",
              "label_levels^(2·horizon) must be <= 1000 (use label_levels: 3 with horizon 2)")
        check(self.spacing_m > 0, "spacing_m", "must be > 0")
        check(self.d_safe_m > 0, "d_safe_m", "must be > 0")
        check(self.controller in FLOCK_CONTROLLERS, "controller",
              f"must be one of {list(FLOCK_CONTROLLERS)}")


@dataclass(frozen=True)
class CocoConfig:
    """The CoCo scenario (defaults: 8 UAVs, 5 UEs, 1 km², −85 dBm ≈ 196 m with n = 2.4).

    The VI settings are in ``solver`` (the same :class:`SolverConfig` as flocking; CoCo's
    default inverse temperature is β = 20).  ``settle`` restricts moves to those that do not
    lower the team objective J: ``always``, ``on_cycle`` from the first stage at which the
    swarm oscillates (``settle_alternations``), or ``anneal`` (default): no UAV moves straight
    back to where it came from, and a joint move may lower J by at most ``settle_tolerance``
    falling linearly to 0 at stage ``settle_anneal_stages`` (40 and 100 chosen on tuning
    seeds 50-54 and 100-104 by coverage; see ``controllers.coverage``).  ``off`` executes VI
    freely (the period-2 oscillation of issue 22).  ``baseline_range_fraction`` sets the
    communication-aware baselines' link budget (fraction of the link range)."""

    n_uavs: int = 8
    n_ues: int = 5
    steps: int = 200
    dt: float = 1.0
    area_m: float = 1000.0
    ue_margin_m: float = 100.0
    v_max: float = 10.0
    headings: int = 8
    ring_fractions: tuple[float, ...] = (0.5, 1.0)
    horizon: int = 1
    launch: tuple[float, float] = (500.0, 500.0)
    launch_spread_m: float = 30.0
    controller: str = "coco"
    execution: str = "mode"
    link_keeping: str = "tree"
    settle: str = "anneal"
    settle_alternations: int = 16
    settle_tolerance: float = 40.0
    settle_anneal_stages: int = 100
    baseline_range_fraction: float = 0.9
    certify: bool = True
    solver: SolverConfig = field(default_factory=lambda: SolverConfig(beta=20.0))
    weights: CoverageWeights = field(default_factory=CoverageWeights)
    roi: RoiConfig = field(default_factory=RoiConfig)
    mobility: MobilityConfig = field(default_factory=MobilityConfig)
    channel: ChannelConfig = field(default_factory=lambda: ChannelConfig(altitude_m=30.0))
    comm: CommConfig = field(default_factory=CommConfig)

    def __post_init__(self) -> None:
        check(self.n_uavs >= 1, "n_uavs", "must be >= 1")
        check(self.n_ues >= 1, "n_ues", "must be >= 1")
        check(self.steps >= 1, "steps", "must be >= 1")
        check(self.dt > 0, "dt", "must be > 0")
        check(self.area_m > 0, "area_m", "must be > 0")
        check(0 <= self.ue_margin_m < self.area_m / 2, "ue_margin_m", "must be in [0, area_m/2)")
        check(self.v_max > 0, "v_max", "must be > 0")
        check(self.headings >= 1, "headings", "must be >= 1")
        check(len(self.ring_fractions) >= 1 and all(0 < f <= 1 for f in self.ring_fractions),
              "ring_fractions", "must be a non-empty list of numbers in (0, 1]")
        check(self.horizon >= 1, "horizon", "must be >= 1")
        check(self.launch_spread_m >= 0, "launch_spread_m", "must be >= 0")
        check(self.controller in COCO_CONTROLLERS, "controller",
              f"must be one of {list(COCO_CONTROLLERS)}")
        check(self.execution in COCO_EXECUTIONS, "execution",
              f"must be one of {list(COCO_EXECUTIONS)}")
        check(self.link_keeping in ("all", "tree"), "link_keeping", "must be 'all' or 'tree'")
        check(self.settle in COCO_SETTLE, "settle", f"must be one of {list(COCO_SETTLE)}")
        check(self.settle_alternations >= 2, "settle_alternations", "must be >= 2")
        check(self.settle_tolerance >= 0, "settle_tolerance", "must be >= 0")
        check(self.settle_anneal_stages >= 0, "settle_anneal_stages", "must be >= 0")
        check(0 < self.baseline_range_fraction <= 1, "baseline_range_fraction",
              "must be in (0, 1]")
