"""Circular obstacles: placement along a route, clearance, and radio blockage (issue 22).

Obstacles are discs (buildings, no-fly cylinders) in the plane.  They matter twice:

* motion: an agent's *clearance* is its distance to the nearest obstacle surface (negative
  inside one); controllers are penalised for predicted clearances below a margin and a
  collision is counted when an agent comes closer than ``d_safe/2`` to a surface;
* radio: a link whose line of sight crosses an obstacle loses ``blockage_db`` (obstruction
  loss on top of the log-distance path loss and shadowing of ``core.channel``), so links break
  behind obstacles and re-form once the agents pass them.

Placement (``place_obstacles``) is seeded: ``count`` discs with radii U[radius_m], centred at
U[along_m] metres along the swarm's direction of travel from its start centroid and
U[−lateral_m, lateral_m] across it, redrawn until no disc overlaps another or comes within
``start_clear_m`` of a start position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swarmgames.core.config import check


@dataclass(frozen=True)
class ObstacleConfig:
    """Seeded disc obstacles on the route (``count: 0`` = none, the default)."""

    count: int = 0
    radius_m: tuple[float, float] = (8.0, 15.0)
    along_m: tuple[float, float] = (40.0, 200.0)
    lateral_m: float = 40.0
    start_clear_m: float = 20.0
    blockage_db: float = 20.0

    def __post_init__(self) -> None:
        check(self.count >= 0, "count", "must be >= 0")
        check(0 < self.radius_m[0] <= self.radius_m[1], "radius_m",
              "must be [min, max] with 0 < min <= max")
        check(self.along_m[0] <= self.along_m[1], "along_m", "must be [min, max]")
        check(self.lateral_m >= 0, "lateral_m", "must be >= 0")
        check(self.start_clear_m >= 0, "start_clear_m", "must be >= 0")
        check(self.blockage_db >= 0, "blockage_db", "must be >= 0")


class Obstacles:
    """A set of discs (centres (K, 2), radii (K,)) with clearance and line-of-sight queries."""

    def __init__(self, centres: np.ndarray, radii: np.ndarray) -> None:
        self.centres = np.asarray(centres, dtype=float).reshape(-1, 2)
        self.radii = np.asarray(radii, dtype=float).reshape(-1)
        if len(self.centres) != len(self.radii):
            raise ValueError("centres and radii must have the same length")

    def __len__(self) -> int:
        return len(self.radii)

    def clearance(self, points: np.ndarray) -> np.ndarray:
        """Distance from each point (..., 2) to the nearest obstacle surface (inf without
        obstacles, negative inside one)."""
        pts = np.asarray(points, dtype=float)
        out = np.full(pts.shape[:-1], np.inf)
        x, y = pts[..., 0], pts[..., 1]
        for (cx, cy), r in zip(self.centres, self.radii, strict=True):
            # one disc at a time: a min over a short trailing axis of (..., K) costs more
            # than K passes over the points (the stage game calls this twice per stage)
            dx, dy = x - cx, y - cy
            np.minimum(out, np.sqrt(dx * dx + dy * dy) - r, out=out)
        return out

    def blocked(self, pos: np.ndarray) -> np.ndarray:
        """(N, N) symmetric bool: the segment between agents i and j crosses an obstacle."""
        n = len(pos)
        if len(self) == 0 or n == 0:
            return np.zeros((n, n), dtype=bool)
        ax, ay = pos[:, 0, None, None], pos[:, 1, None, None]       # (N, 1, 1)
        abx, aby = pos[None, :, 0, None] - ax, pos[None, :, 1, None] - ay   # (N, N, 1)
        acx, acy = self.centres[:, 0] - ax, self.centres[:, 1] - ay         # (N, 1, K)
        len2 = np.maximum(abx * abx + aby * aby, 1e-12)
        s = np.clip((acx * abx + acy * aby) / len2, 0.0, 1.0)   # nearest segment point
        dx, dy = s * abx - acx, s * aby - acy
        out = (dx * dx + dy * dy < self.radii ** 2).any(axis=-1)
        np.fill_diagonal(out, False)
        return out | out.T

    def blockage_db(self, pos: np.ndarray, loss_db: float) -> np.ndarray:
        """(N, N) extra attenuation in dB (negative) on blocked links, 0 elsewhere."""
        return np.where(self.blocked(pos), -float(loss_db), 0.0)


def place_obstacles(cfg: ObstacleConfig, start: np.ndarray, direction: np.ndarray,
                    rng: np.random.Generator, max_tries: int = 1000) -> Obstacles:
    """``cfg.count`` non-overlapping discs along ``direction`` from the centroid of ``start``
    (N, 2), none within ``start_clear_m`` of a start position (see the module docstring).
    Raises ValueError when they cannot be placed in ``max_tries`` draws."""
    if cfg.count == 0:
        return Obstacles(np.zeros((0, 2)), np.zeros(0))
    u = np.asarray(direction, dtype=float)
    u = u / np.linalg.norm(u) if np.linalg.norm(u) > 0 else np.array([1.0, 0.0])
    w = np.array([-u[1], u[0]])
    origin = np.asarray(start, dtype=float).mean(axis=0)
    centres: list[np.ndarray] = []
    radii: list[float] = []
    for _ in range(max_tries):
        if len(centres) == cfg.count:
            break
        r = rng.uniform(*cfg.radius_m)
        c = origin + rng.uniform(*cfg.along_m) * u + rng.uniform(-cfg.lateral_m,
                                                                 cfg.lateral_m) * w
        if np.min(np.linalg.norm(start - c, axis=1)) < r + cfg.start_clear_m:
            continue
        if any(np.linalg.norm(c - q) < r + rq for q, rq in zip(centres, radii, strict=True)):
            continue
        centres.append(c)
        radii.append(r)
    if len(centres) < cfg.count:
        raise ValueError(f"obstacles: could not place {cfg.count} discs without overlap in "
                         f"{max_tries} draws; widen along_m / lateral_m or shrink radius_m")
    return Obstacles(np.array(centres), np.array(radii))
