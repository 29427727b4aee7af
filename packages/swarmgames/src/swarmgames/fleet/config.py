"""Configuration of the advanced-air-mobility (AAM) fleet game (design note §3.2, §3.8).

Every reconstructed choice of §3.2 is a key here: the vertiport network (layout, depot and
client nodes after the addendum's hint), vehicle classes (capacity, range, speed, comm range,
observation radius, cost, charging), fleet compositions, Poisson demand with a time-of-day
profile and a spatial pattern, patience, the conflict rule between fleets, reward sharing and the
observation topology.  Distances are km, time is in decision steps (Δt = 1 simulated minute).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swarmgames.core.channel import ChannelConfig
from swarmgames.core.config import check

TOPOLOGIES = ("local", "comm_1hop", "comm_khop", "full")


@dataclass(frozen=True)
class VehicleClass:
    """One vehicle class c (§3.2): capacity κ_c, max range R_c (battery km), speed s_c (km per
    step), comm range (sets the class transmit power, §2.2), observation radius ρ_obs(c), cost
    per km and charging rate ρ_c (km per step at a depot)."""

    name: str = "M"
    capacity: int = 2
    range_km: float = 40.0
    speed_km: float = 2.5
    comm_range_km: float = 6.0
    obs_radius_km: float = 6.0
    cost_per_km: float = 0.8
    charge_km: float = 4.0

    def __post_init__(self) -> None:
        check(self.capacity >= 1, "capacity", "must be >= 1")
        check(self.range_km > 0, "range_km", "must be > 0")
        check(self.speed_km > 0, "speed_km", "must be > 0")
        check(self.comm_range_km > 0, "comm_range_km", "must be > 0")
        check(self.obs_radius_km >= 0, "obs_radius_km", "must be >= 0")
        check(self.cost_per_km >= 0, "cost_per_km", "must be >= 0")
        check(self.charge_km >= 0, "charge_km", "must be >= 0")


def default_classes() -> tuple[VehicleClass, ...]:
    """S / M / L classes: small fast short-range, large slow long-range (§3.2 [R])."""
    return (
        VehicleClass("S", capacity=1, range_km=30.0, speed_km=3.0, comm_range_km=4.0,
                     obs_radius_km=4.0, cost_per_km=0.5, charge_km=4.0),
        VehicleClass("M", capacity=2, range_km=40.0, speed_km=2.5, comm_range_km=6.0,
                     obs_radius_km=6.0, cost_per_km=0.8, charge_km=4.0),
        VehicleClass("L", capacity=4, range_km=55.0, speed_km=2.0, comm_range_km=8.0,
                     obs_radius_km=8.0, cost_per_km=1.2, charge_km=5.0),
    )


@dataclass(frozen=True)
class NetworkConfig:
    """Vertiport network: ``layout`` grid | random | hub_spoke in a ``side_km`` square; the first
    ``n_depots`` vertiports (the hub for hub_spoke) are depots with full-rate chargers, the others
    are client nodes charging at ``client_charge_factor`` of the class rate."""

    n_vertiports: int = 8
    side_km: float = 12.0
    layout: str = "random"
    min_separation_km: float = 2.0
    n_depots: int = 2
    client_charge_factor: float = 0.5

    def __post_init__(self) -> None:
        check(self.n_vertiports >= 2, "n_vertiports", "must be >= 2")
        check(self.side_km > 0, "side_km", "must be > 0")
        check(self.layout in ("grid", "random", "hub_spoke"), "layout",
              "must be 'grid', 'random' or 'hub_spoke'")
        check(self.min_separation_km >= 0, "min_separation_km", "must be >= 0")
        check(0 <= self.n_depots <= self.n_vertiports, "n_depots",
              "must be between 0 and n_vertiports")
        check(0 <= self.client_charge_factor <= 1, "client_charge_factor", "must be in [0, 1]")


@dataclass(frozen=True)
class DemandConfig:
    """Poisson requests, λ_od(t) = Λ·g(t)·P_od (§3.2).  ``profile``: flat | two_peaks;
    ``pattern``: uniform | gravity (∝ pop_o·pop_d / dist²) | hub (hub-centric: half of the mass on
    trips from/to vertiport 0).  Fare = base + per_km·dist·q; a request expires after ``patience``
    steps unless picked up."""

    rate: float = 0.6
    profile: str = "flat"
    pattern: str = "gravity"
    q_max: int = 3
    patience: int = 12
    fare_base: float = 4.0
    fare_per_km: float = 1.5
    peak_width: float = 0.12

    def __post_init__(self) -> None:
        check(self.rate >= 0, "rate", "must be >= 0")
        check(self.profile in ("flat", "two_peaks"), "profile", "must be 'flat' or 'two_peaks'")
        check(self.pattern in ("uniform", "gravity", "hub"), "pattern",
              "must be 'uniform', 'gravity' or 'hub'")
        check(self.q_max >= 1, "q_max", "must be >= 1")
        check(self.patience >= 1, "patience", "must be >= 1")
        check(self.fare_base >= 0 and self.fare_per_km >= 0, "fare_base",
              "fares must be >= 0")
        check(self.peak_width > 0, "peak_width", "must be > 0")


@dataclass(frozen=True)
class AamConfig:
    """The AAM partially observable Markov game (§3.2).

    ``fleets``: per fleet, the vehicle count of each class (in ``classes`` order).
    ``conflict``: ``eta`` (lowest trip time wins, seeded ties) | ``price`` (lowest quote
    cost_per_km·dist wins).  ``reward_sharing``: ``fleet`` (each agent receives its fleet's step
    reward) | ``individual``.  ``topology``: which other vehicles an agent observes: ``local``
    (none), ``comm_1hop``, ``comm_khop`` (``obs_hops``), ``full`` (everything, also all
    vertiports and requests).  ``max_requests`` = M_max serve slots per decision.
    ``vertiport_types``: ``single`` node type or ``depot_client`` (two node types, addendum).
    """

    steps: int = 120
    network: NetworkConfig = field(default_factory=NetworkConfig)
    classes: tuple[VehicleClass, ...] = field(default_factory=default_classes)
    fleets: tuple[tuple[int, ...], ...] = ((2, 1, 1), (1, 2, 1))
    demand: DemandConfig = field(default_factory=DemandConfig)
    conflict: str = "eta"
    reward_sharing: str = "fleet"
    c_conf: float = 0.5
    c_inf: float = 10.0
    c_wait: float = 0.0
    max_requests: int = 6
    topology: str = "comm_1hop"
    obs_hops: int = 2
    vertiport_types: str = "single"
    initial_soc: float = 1.0
    channel: ChannelConfig = field(default_factory=lambda: ChannelConfig(preset="n2.4"))

    def __post_init__(self) -> None:
        check(self.steps >= 1, "steps", "must be >= 1")
        check(len(self.classes) >= 1, "classes", "need at least one class")
        check(len(self.fleets) >= 1, "fleets", "need at least one fleet")
        for f, comp in enumerate(self.fleets):
            check(len(comp) == len(self.classes), f"fleets[{f}]",
                  f"needs one count per class ({len(self.classes)})")
            check(all(c >= 0 for c in comp) and sum(comp) >= 1, f"fleets[{f}]",
                  "counts must be >= 0 with at least one vehicle")
        check(self.conflict in ("eta", "price"), "conflict", "must be 'eta' or 'price'")
        check(self.reward_sharing in ("fleet", "individual"), "reward_sharing",
              "must be 'fleet' or 'individual'")
        check(self.c_conf >= 0 and self.c_inf >= 0 and self.c_wait >= 0, "c_conf",
              "penalties must be >= 0")
        check(self.max_requests >= 1, "max_requests", "must be >= 1")
        check(self.topology in TOPOLOGIES, "topology", f"must be one of {list(TOPOLOGIES)}")
        check(self.obs_hops >= 1, "obs_hops", "must be >= 1")
        check(self.vertiport_types in ("single", "depot_client"), "vertiport_types",
              "must be 'single' or 'depot_client'")
        check(0 < self.initial_soc <= 1, "initial_soc", "must be in (0, 1]")

    @property
    def n_vehicles(self) -> int:
        return sum(sum(c) for c in self.fleets)

    @property
    def n_actions(self) -> int:
        """M_max serve slots + V reposition slots + 1 wait/charge."""
        return self.max_requests + self.network.n_vertiports + 1
