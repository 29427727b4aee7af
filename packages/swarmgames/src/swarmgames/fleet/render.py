"""Vertiport network plot with queues and vehicles by class and fleet (design note §2.4, §8)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from swarmgames.core.render import save_figure
from swarmgames.fleet.sim import AamSim

MARKERS = ("o", "s", "^", "D", "v")
FLEET_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple")


def draw_network(ax: Any, snap: dict[str, Any]) -> None:
    """Depots (squares) and client vertiports (circles) sized by queue length, comm links,
    vehicles marked by class and coloured by fleet (hollow = idle, filled = flying)."""
    vp, q = snap["vp"], snap["queue"]
    dep = snap["is_depot"]
    ax.scatter(vp[dep, 0], vp[dep, 1], s=120 + 60 * q[dep], marker="s", c="lightgrey",
               edgecolors="k", zorder=1, label="depot")
    ax.scatter(vp[~dep, 0], vp[~dep, 1], s=120 + 60 * q[~dep], marker="o", c="white",
               edgecolors="k", zorder=1, label="client")
    for v in range(len(vp)):
        ax.annotate(f"{q[v]}", vp[v], ha="center", va="center", fontsize=7, zorder=2)
    pos, adj = snap["pos"], snap["adj"]
    i, j = np.nonzero(adj)
    for a, b in zip(i, j, strict=True):
        ax.plot(*zip(pos[a], pos[b], strict=True), color="0.8", lw=0.5, zorder=0)
    for k, name in enumerate(snap["class_names"]):
        for f in np.unique(snap["fleet"]):
            sel = (snap["cls"] == k) & (snap["fleet"] == f)
            if not sel.any():
                continue
            fly = snap["status"][sel] == 1
            col = FLEET_COLOURS[f % len(FLEET_COLOURS)]
            p = pos[sel] + 0.15 * (k - 1)
            ax.scatter(p[fly, 0], p[fly, 1], marker=MARKERS[k % 5], c=col, s=40, zorder=3)
            ax.scatter(p[~fly, 0], p[~fly, 1], marker=MARKERS[k % 5], facecolors="none",
                       edgecolors=col, s=40, zorder=3, label=f"fleet {f} {name}")
    s = snap["side"]
    ax.set_xlim(0, s)
    ax.set_ylim(0, s)
    ax.set_aspect("equal")
    ax.set_title(f"t = {snap['t']} min (labels: open requests)")
    ax.set_xlabel("x (km)")
    ax.set_ylabel("y (km)")
    ax.legend(fontsize=6, loc="upper right")


def plot_network(snap: dict[str, Any], path: str | Path) -> None:
    """Save one network figure (``draw_network``)."""
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    draw_network(ax, snap)
    save_figure(fig, path)


def rollout_frames(sim: AamSim, policy: Callable[[AamSim], np.ndarray], path: str | Path,
                   at: tuple[float, ...] = (0.0, 0.5, 1.0)) -> None:
    """Run ``policy`` for one episode and plot the network at fractions ``at`` of it."""
    stops = sorted({min(int(a * sim.cfg.steps), sim.cfg.steps) for a in at})
    snaps = []
    while True:
        if sim.t in stops:
            snaps.append(sim.snapshot())
        if sim.done:
            break
        sim.step(policy(sim))
    fig, axes = plt.subplots(1, len(snaps), figsize=(5 * len(snaps), 5))
    for ax, sn in zip(np.atleast_1d(axes), snaps, strict=True):
        draw_network(ax, sn)
    save_figure(fig, path, dpi=100)
