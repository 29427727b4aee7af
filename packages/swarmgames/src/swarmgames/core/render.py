"""Matplotlib rendering: swarm snapshot with links coloured by RSS, ROI ellipse and coverage
heat-map, connectivity timeline, GIF export (design note §2.4, §8), and the figure helpers every
plot in the package goes through (``save_figure``, ``figure_rgb``, ``HumanWindow``).

The backend is not forced: headless machines fall back to Agg, the CLI sets ``MPLBACKEND=Agg``,
and ``render_mode="human"`` can open a window where a GUI backend exists."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.patches import Circle, Ellipse


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> None:
    """Lay out, write and close ``fig`` (the one place plots are saved)."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def figure_rgb(fig: Any) -> np.ndarray:
    """Draw ``fig`` into an (H, W, 3) uint8 array and close it (``render_mode='rgb_array'``)."""
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return img


class HumanWindow:
    """``render_mode='human'``: shows frames in one persistent window when matplotlib has an
    interactive backend; with a non-interactive backend (Agg, headless CI) frames are kept as
    ``last_frame`` only, so rendering never blocks or fails."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.last_frame: np.ndarray | None = None
        self._fig: Any = None
        self._im: Any = None

    def show(self, frame: np.ndarray) -> None:
        """Display ``frame`` (H, W, 3)."""
        self.last_frame = frame
        if matplotlib.get_backend().lower() in ("agg", "pdf", "ps", "svg", "cairo", "template"):
            return
        if self._fig is None:
            self._fig, ax = plt.subplots(num=self.title)
            ax.axis("off")
            self._im = ax.imshow(frame)
        else:
            self._im.set_data(frame)
        self._fig.canvas.draw_idle()
        plt.pause(0.001)

    def close(self) -> None:
        """Close the window if one was opened."""
        if self._fig is not None:
            plt.close(self._fig)
            self._fig = None


def draw_snapshot(ax: Any, snap: dict[str, Any], rss_span_db: float = 30.0) -> None:
    """Draw one world snapshot on ``ax`` (UAVs, links by RSS; for CoCo also ROI, heat, UEs)."""
    p = snap["p"]
    th = snap.get("threshold_dbm", -85.0)
    if snap.get("kind") == "coco":
        area = snap["area"]
        ax.imshow(snap["heat"], origin="lower", extent=(0, area, 0, area), cmap="Greens",
                  vmin=0, vmax=1, alpha=0.6)
        roi = snap["roi"]
        ev, evec = np.linalg.eigh(roi.cov)
        ang = float(np.degrees(np.arctan2(evec[1, 1], evec[0, 1])))
        ax.add_patch(Ellipse(tuple(roi.mean), 2 * roi.kappa * np.sqrt(ev[1]),
                             2 * roi.kappa * np.sqrt(ev[0]), angle=ang, fill=False,
                             ls="--", color="tab:purple", lw=1.5))
        ax.scatter(snap["ues"][:, 0], snap["ues"][:, 1], marker="s", c="tab:red", s=30,
                   label="UE", zorder=4)
        ax.set_xlim(0, area)
        ax.set_ylim(0, area)
    for c, r in zip(*snap.get("obstacles", (np.zeros((0, 2)), np.zeros(0))), strict=True):
        ax.add_patch(Circle(tuple(c), float(r), color="0.55", alpha=0.6, zorder=1))
    adj = snap["adj"] & snap["adj"].T
    i, j = np.nonzero(np.triu(adj, 1))
    if len(i):
        segs = np.stack([p[i], p[j]], axis=1)
        lc = LineCollection(segs, cmap="viridis", linewidths=1.2, zorder=2)
        lc.set_array(np.minimum(snap["rx"][i, j], snap["rx"][j, i]))
        lc.set_clim(th, th + rss_span_db)
        ax.add_collection(lc)
        plt.colorbar(lc, ax=ax, label="link RSS (dBm)", fraction=0.046)
    ax.scatter(p[:, 0], p[:, 1], c="k", s=18, zorder=3, label="UAV")
    if "v" in snap:
        ax.quiver(p[:, 0], p[:, 1], snap["v"][:, 0], snap["v"][:, 1], color="tab:blue",
                  width=0.003, zorder=3)
        pad = 20.0
        ax.set_xlim(p[:, 0].min() - pad, p[:, 0].max() + pad)
        ax.set_ylim(p[:, 1].min() - pad, p[:, 1].max() + pad)
    ax.set_aspect("equal")
    ax.set_title(f"t = {snap['t']:.1f} s")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")


def plot_snapshot(snap: dict[str, Any], path: str | Path) -> None:
    """Save one snapshot figure."""
    fig, ax = plt.subplots(figsize=(6, 5.5))
    draw_snapshot(ax, snap)
    save_figure(fig, path)


def rgb_array(snap: dict[str, Any]) -> np.ndarray:
    """Snapshot rendered to an (H, W, 3) uint8 array (``render_mode='rgb_array'``)."""
    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=80)
    draw_snapshot(ax, snap)
    return figure_rgb(fig)


def plot_timeline(history: Sequence[dict[str, float]], keys: Sequence[str],
                  path: str | Path, title: str = "") -> None:
    """Connectivity (and other metric) timelines, one panel per key."""
    t = [h["t"] for h in history]
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 1.7 * len(keys)), sharex=True)
    axes = np.atleast_1d(axes)
    for ax, k in zip(axes, keys, strict=True):
        ax.plot(t, [h.get(k, np.nan) for h in history], lw=1.2)
        ax.set_ylabel(k, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("t (s)")
    if title:
        axes[0].set_title(title)
    save_figure(fig, path)


def save_gif(snaps: Sequence[dict[str, Any]], path: str | Path, fps: int = 8) -> None:
    """Animate snapshots into a GIF (Pillow)."""
    from PIL import Image

    frames = [Image.fromarray(rgb_array(s)) for s in snaps]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(1000 / fps),
                   loop=0)
