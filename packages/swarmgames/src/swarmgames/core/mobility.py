"""Ground-user (UE) mobility: stationary or random waypoint with a minimum-separation push
(design note §2.1; the authors drove UEs with a ROS RVO simulator, replaced here [R])."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swarmgames.core.config import check


@dataclass(frozen=True)
class MobilityConfig:
    """UE motion model inside the square [margin, area − margin]²."""

    model: str = "stationary"
    speed_min: float = 1.0
    speed_max: float = 3.0
    pause_s: float = 5.0
    min_separation_m: float = 5.0

    def __post_init__(self) -> None:
        check(self.model in ("stationary", "random_waypoint"), "model",
              "must be 'stationary' or 'random_waypoint'")
        check(0 <= self.speed_min <= self.speed_max, "speed_min",
              "need 0 <= speed_min <= speed_max")
        check(self.pause_s >= 0, "pause_s", "must be >= 0")
        check(self.min_separation_m >= 0, "min_separation_m", "must be >= 0")


class UEMobility:
    """Stateful UE mover driven by its own random stream."""

    def __init__(self, cfg: MobilityConfig, pos: np.ndarray, lo: float, hi: float,
                 rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.pos = np.array(pos, dtype=float)
        self.lo, self.hi = lo, hi
        self.rng = rng
        n = len(self.pos)
        self.target = self.pos.copy()
        self.speed = np.zeros(n)
        self.pause = np.zeros(n)
        if cfg.model == "random_waypoint":
            for i in range(n):
                self._new_leg(i)

    def _new_leg(self, i: int) -> None:
        self.target[i] = self.rng.uniform(self.lo, self.hi, size=2)
        self.speed[i] = self.rng.uniform(self.cfg.speed_min, self.cfg.speed_max)

    def step(self, dt: float) -> np.ndarray:
        """Advance by ``dt`` seconds and return the new positions."""
        if self.cfg.model == "stationary":
            return self.pos
        for i in range(len(self.pos)):
            if self.pause[i] > 0:
                self.pause[i] = max(0.0, self.pause[i] - dt)
                if self.pause[i] == 0:
                    self._new_leg(i)
                continue
            delta = self.target[i] - self.pos[i]
            dist = float(np.linalg.norm(delta))
            stepd = self.speed[i] * dt
            if dist <= stepd:
                self.pos[i] = self.target[i]
                self.pause[i] = self.cfg.pause_s
                if self.pause[i] == 0:
                    self._new_leg(i)
            else:
                self.pos[i] = self.pos[i] + delta * (stepd / dist)
        self._separate()
        return self.pos

    def _separate(self) -> None:
        s = self.cfg.min_separation_m
        if s <= 0 or len(self.pos) < 2:
            return
        diff = self.pos[:, None] - self.pos[None]
        d = np.linalg.norm(diff, axis=2)
        np.fill_diagonal(d, np.inf)
        close = d < s
        if close.any():
            push = np.where(close[..., None], diff / np.maximum(d, 1e-9)[..., None]
                            * (s - np.minimum(d, s))[..., None] * 0.5, 0.0).sum(axis=1)
            self.pos = np.clip(self.pos + push, self.lo, self.hi)
