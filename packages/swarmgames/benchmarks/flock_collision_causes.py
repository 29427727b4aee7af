"""Why do agents collide in a flocking run?  Per collision event, the decision steps before it.

A collision event is a pair (i, j) that comes closer than ``d_safe`` after a step while it was
not closer before.  For the ``--lookback`` decision steps before each event the script
records, from the stage game the controller actually played:

* ``nbr``: whether j is in i's neighbourhood and i in j's (the separation hinge χ only enters
  the payoff of a neighbour); ``edge``: whether the pair edge is in the stage game (the
  danger-radius filter); ``blocked``: whether the line of sight crosses an obstacle;
* ``d`` (current distance), ``d_hat`` (distance of the predicted positions p̂ at the played
  labels, what χ sees), ``closing`` (closing speed, m/s);
* ``clear_i`` / ``clear_j``: obstacle clearance of the played p̂ (the obstacle term is active
  below ``d_obs``); ``obs_pen``: that term's penalty on the played labels (i + j);
* ``sep_pen``: χ at the played labels (one direction); ``escape``: whether some joint pair
  of feasible labels keeps the pair at least ``d_safe`` apart after the step (both agents
  moving, others as played); ``br_without_obs``: whether i's and j's best responses to the
  played profile *without* the obstacle term raise d_hat (the obstacle term held them).

The per-event verdict (first rule that applies, over the lookback window):

* ``not-neighbours``: χ was absent (no nbr edge) while d_hat < d_sep on some decision step
  (line of sight or range broke the link, or the neighbourhood was stale);
* ``unavoidable``: at the first decision step with d_hat < d_safe no joint label pair kept
  them apart (speed and the acceleration limit: seen too late);
* ``obstacle-squeeze``: the obstacle term was active on a decision step with d_hat < d_sep and
  without it the two would have moved apart;
* ``separation-weight``: χ was present, the pair could escape, and the payoff still chose to
  close in (the separation weight loses to the other terms).

    python packages/swarmgames/benchmarks/flock_collision_causes.py --config \\
        packages/swarmgames/configs/flock_obstacles.yaml --sizes 32 100 --seeds 0 1 2 3 4 \\
        --out benchmarks/results/flock-obstacles-collisions.md
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from swarmgames.games.build import make_flock_sim
from swarmgames.runner import load_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "flock_obstacles.yaml"


def _pair_dist(p: np.ndarray) -> np.ndarray:
    d = np.linalg.norm(p[:, None] - p[None], axis=2)
    np.fill_diagonal(d, np.inf)
    return d


def run(cfg, seed: int, lookback: int) -> list[dict]:
    sim = make_flock_sim(cfg, seed)
    pc = cfg.payoff
    d_safe = cfg.d_safe_m
    records: list[dict] = []        # per step: state, game, labels
    events: list[dict] = []
    prev_close = _pair_dist(sim.p) < d_safe
    prev_hit = np.zeros(cfg.n_agents, dtype=bool)
    for _ in range(cfg.steps):
        p, v, nbr = sim.p.copy(), sim.v.copy(), sim.nbr.copy()
        game = sim.stage_game()
        sim.step()
        labels = sim.labels.copy()
        records.append({"p": p, "v": v, "nbr": nbr, "game": game, "labels": labels})
        close = _pair_dist(sim.p) < d_safe
        new = np.argwhere(np.triu(close & ~prev_close, 1))
        prev_close = close
        for i, j in new:
            events.append(diagnose(sim, records[-lookback:], int(i), int(j), pc, d_safe,
                                   seed, len(records)))
        if len(sim.obstacles):
            hit = sim.obstacles.clearance(sim.p) < d_safe / 2
            for i in np.flatnonzero(hit & ~prev_hit):
                events.append(diagnose_obstacle(sim, records[-lookback:], int(i), pc, d_safe,
                                                seed, len(records)))
            prev_hit = hit
    return events


def diagnose_obstacle(sim, window: list[dict], i: int, pc, d_safe: float, seed: int,
                      step: int) -> dict:
    """An agent that comes within d_safe/2 of an obstacle surface: could it have stayed
    out (``escape``), and did its separation from neighbours push it in (its best response
    without the χ terms keeps more clearance)?"""
    obs = sim.obstacles
    rows = []
    for r in window:
        g, lab, p, v = r["game"], r["labels"], r["p"], r["v"]
        pp = sim.dyn.predict(p[i][None, :], v[i][None, :], sim.seqs[:, 0, :])[0]
        clear_next = obs.clearance(pp)
        clear_hat = np.minimum(clear_next, obs.clearance(g.features[i, :, :2]))
        vals = g.local_payoffs(g.onehot(lab), rows=np.array([i]))[0]
        sep = g.kernel_pair_term(lab)[i] if g.kernel is not None else np.zeros_like(vals)
        br = int(np.argmax(np.where(g.mask[i], vals, -np.inf)))
        br_no = int(np.argmax(np.where(g.mask[i], vals - sep, -np.inf)))
        rows.append({"clear": float(obs.clearance(p[i][None])[0]),
                     "clear_hat": float(clear_hat[lab[i]]),
                     "escape": bool((g.mask[i] & (clear_next >= d_safe / 2)).any()),
                     "clear_hat_br": float(clear_hat[br]),
                     "clear_hat_br_without_sep": float(clear_hat[br_no]),
                     "sep_pen": float(-sep[lab[i]]), "speed": float(np.linalg.norm(v[i]))})
    verdict = "obstacle-weight"
    if not rows[-1]["escape"]:
        verdict = "unavoidable"
    elif any(x["clear_hat_br_without_sep"] > x["clear_hat_br"] + 1e-6 for x in rows):
        verdict = "neighbour-squeeze"
    return {"seed": seed, "step": step, "i": i, "j": "obstacle", "verdict": verdict,
            "d_after": float(obs.clearance(sim.p[i][None])[0]),
            "closing_max": max(x["speed"] for x in rows),
            "min_clear": min(x["clear"] for x in rows), "steps_without_nbr": 0,
            "steps_blocked": 0, "steps_obstacle_active": sum(x["clear_hat"] < pc.d_obs_m
                                                             for x in rows),
            "escape_last": rows[-1]["escape"], "rows": rows}


def diagnose(sim, window: list[dict], i: int, j: int, pc, d_safe: float, seed: int,
             step: int) -> dict:
    rows = []
    obs = sim.obstacles
    for r in window:
        g, lab, p, v = r["game"], r["labels"], r["p"], r["v"]
        f = g.features
        ph_i, ph_j = f[i, lab[i], :2], f[j, lab[j], :2]
        d_hat = float(np.linalg.norm(ph_i - ph_j))
        rel = p[i] - p[j]
        d = float(np.linalg.norm(rel))
        closing = float(-np.dot(rel, v[i] - v[j]) / max(d, 1e-9))
        edges = set(zip(g.pair_src.tolist(), g.pair_dst.tolist(), strict=True))
        # obstacle term on every label of i and j (the unary part it contributes)
        pp = sim.dyn.predict(p[[i, j]][:, None, :], v[[i, j]][:, None, :],
                             sim.seqs[None, :, 0, :])[0]
        clear = np.minimum(obs.clearance(pp), obs.clearance(f[[i, j], :, :2]))
        pen = pc.w_obstacle * np.maximum(0.0, pc.d_obs_m - clear) ** 2   # (2, L)
        # joint escape: p' of i and j over all label pairs
        p1 = pp[0][:, None, :] - pp[1][None, :, :]
        ok = g.mask[i][:, None] & g.mask[j][None, :]
        escape = bool((ok & (np.linalg.norm(p1, axis=2) >= d_safe)).any())
        # best responses to the played profile with and without the obstacle term
        vals = g.local_payoffs(g.onehot(lab), rows=np.array([i, j]))
        br = [int(np.argmax(np.where(g.mask[k], vals[n], -np.inf))) for n, k in
              enumerate((i, j))]
        br_no = [int(np.argmax(np.where(g.mask[k], vals[n] + pen[n], -np.inf))) for n, k in
                 enumerate((i, j))]
        d_no = float(np.linalg.norm(f[i, br_no[0], :2] - f[j, br_no[1], :2]))
        d_br = float(np.linalg.norm(f[i, br[0], :2] - f[j, br[1], :2]))
        sep = float(g.kernel(f[i, lab[i]], f[j, lab[j]])) if g.kernel is not None else 0.0
        rows.append({"nbr": bool(r["nbr"][i, j] and r["nbr"][j, i]),
                     "nbr_any": bool(r["nbr"][i, j] or r["nbr"][j, i]),
                     "edge": (i, j) in edges or (j, i) in edges,
                     "blocked": bool(obs.blocked(p[[i, j]])[0, 1]) if len(obs) else False,
                     "d": d, "d_hat": d_hat, "closing": closing,
                     "clear_i": float(clear[0, lab[i]]), "clear_j": float(clear[1, lab[j]]),
                     "obs_pen": float(pen[0, lab[i]] + pen[1, lab[j]]), "sep_pen": -sep,
                     "escape": escape, "d_hat_br": d_br, "d_hat_br_without_obs": d_no})
    verdict = "separation-weight"
    danger = [x for x in rows if x["d_hat"] < pc.d_sep_m]
    first_in = next((x for x in rows if x["d_hat"] < d_safe), rows[-1])
    if any(not x["nbr"] for x in danger):
        verdict = "not-neighbours"
    elif not first_in["escape"]:
        verdict = "unavoidable"
    elif any(x["obs_pen"] > 0 and x["d_hat_br_without_obs"] > x["d_hat_br"] + 1e-6
             for x in danger):
        verdict = "obstacle-squeeze"
    last = rows[-1]
    return {"seed": seed, "step": step, "i": i, "j": j, "verdict": verdict,
            "d_after": float(np.linalg.norm(sim.p[i] - sim.p[j])),
            "closing_max": max(x["closing"] for x in rows),
            "min_clear": min(min(x["clear_i"], x["clear_j"]) for x in rows),
            "steps_without_nbr": sum(not x["nbr"] for x in danger),
            "steps_blocked": sum(x["blocked"] for x in danger),
            "steps_obstacle_active": sum(x["obs_pen"] > 0 for x in danger),
            "escape_last": last["escape"], "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 100])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--pairwise", default="exact")
    ap.add_argument("--lookback", type=int, default=10)
    ap.add_argument("--set", nargs="*", default=[], help="extra dotted overrides")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    load0 = os.getloadavg()
    lines = []
    for n in a.sizes:
        over = [f"flock.n_agents={n}", f"flock.solver.pairwise={a.pairwise}", *a.set]
        cfg = load_config(a.config, over)[0].flock
        for s in a.seeds:
            ev = run(cfg, s, a.lookback)
            print(f"N={n} seed={s}: {len(ev)} collision events", flush=True)
            for e in ev:
                line = (f"| {n} | {s} | {e['step']} | {e['i']}-{e['j']} | {e['verdict']} | "
                        f"{e['d_after']:.2f} | {e['closing_max']:.2f} | {e['min_clear']:.1f} | "
                        f"{e['steps_without_nbr']} | {e['steps_blocked']} | "
                        f"{e['steps_obstacle_active']} | {e['escape_last']} |")
                lines.append(line)
                print(line, flush=True)
                if a.verbose:
                    for x in e["rows"]:
                        print("    " + ", ".join(f"{k}={val:.2f}" if isinstance(val, float)
                                                 else f"{k}={val}" for k, val in x.items()))
    if a.out:
        cmd = (f"python packages/swarmgames/benchmarks/flock_collision_causes.py --config "
               f"{a.config} --sizes {' '.join(map(str, a.sizes))} --seeds "
               f"{' '.join(map(str, a.seeds))} --pairwise {a.pairwise}"
               + (f" --set {' '.join(a.set)}" if a.set else "") + f" --out {a.out}")
        head = ["# Collision events and their measured cause", "", f"Command: `{cmd}` "
                "(OMP_NUM_THREADS=1, shared 2-core CPU)", "",
                f"Load average before: {' / '.join(f'{x:.2f}' for x in load0)}; after: "
                f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())}.  Verdict rules: the "
                "script's docstring.", "",
                "| N | seed | step | pair | verdict | d after (m) | max closing speed (m/s) | "
                "min clearance (m) | danger steps without nbr | of them LOS-blocked | "
                "with obstacle term active | escape at last step |",
                "|" + "---|" * 12]
        a.out.write_text("\n".join(head + (lines or ["| (no collision events) |" + " |" * 11]))
                         + "\n")


if __name__ == "__main__":
    main()
