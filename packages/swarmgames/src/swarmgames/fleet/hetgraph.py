"""Heterogeneous graph of one AAM decision step (design note §3.3, "Graph per decision").

One *global* graph per step whose edges are restricted to what each vehicle observes or hears,
so a single forward pass yields every vehicle's decentralised policy; L message-passing layers
are L communication rounds (§3.3 "Efficiency").  Node features are absolute (normalised by the
side, the class maxima and the horizon); everything ego-relative lives in the per-candidate
features the decoder reads, so shared nodes never depend on who looks at them.

Node types: ``vehicle`` (own state), ``rival`` (the position-only view of a vehicle that other
fleets get), ``request`` (open requests), ``vertiport`` — or ``depot`` and ``client`` with
``vertiport_types: depot_client`` (addendum).  Edge types (src → dst):

* inter-agent: (vehicle, comm, vehicle) same-fleet j → i when i observes j on the comm graph;
  (rival, comm, vehicle) for other-fleet j;
* intra-agent: (request, option_of, vehicle) feasible serve candidates; (request, seen_by,
  vehicle) observed requests; (vertiport, hosts, vehicle) current / destination vertiport;
  (vertiport, seen_by, vehicle) observed vertiports;
* context: (request, waiting_at, vertiport) and (vertiport, has, request).

``rival`` never receives messages: encoders must carry such node types forward (§7 gotcha 1).
"""

from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import HeteroData

from swarmgames.fleet.sim import IDLE, PENDING, AamSim

VEH_F, RIVAL_F, REQ_F, VP_F, REL_F = 15, 3, 8, 6, 3
NORM = {"cap": 4.0, "range": 60.0, "speed": 3.0, "comm": 8.0, "cost": 1.5, "charge": 5.0,
        "fare": 50.0, "queue": 5.0}


def vertiport_types(sim: AamSim) -> tuple[str, ...]:
    return ("vertiport",) if sim.cfg.vertiport_types == "single" else ("depot", "client")


def node_dims(vp_types: tuple[str, ...]) -> dict[str, int]:
    """Input feature width of every node type."""
    return {"vehicle": VEH_F, "rival": RIVAL_F, "request": REQ_F, **{t: VP_F for t in vp_types}}


def edge_types(vp_types: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """All relations (always present, possibly empty, so the metadata is fixed)."""
    rels = [("vehicle", "comm", "vehicle"), ("rival", "comm", "vehicle"),
            ("request", "option_of", "vehicle"), ("request", "seen_by", "vehicle")]
    for t in vp_types:
        rels += [(t, "hosts", "vehicle"), (t, "seen_by", "vehicle"),
                 ("request", "waiting_at", t), (t, "has", "request")]
    return rels


def metadata(vp_types: tuple[str, ...]) -> tuple[list[str], list[tuple[str, str, str]]]:
    return list(node_dims(vp_types)), edge_types(vp_types)


def _ei(src: list[int] | np.ndarray, dst: list[int] | np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray([src, dst], dtype=np.int64).reshape(2, -1))


def build_graph(sim: AamSim, full: bool = False) -> HeteroData:
    """The global observation-restricted graph of the current step (§3.3); ``full=True``
    drops the restriction (every vehicle, vertiport and request: the MAPPO critic's state).

    Per-vehicle decoder inputs are stored on the ``vehicle`` store: ``cand_req`` (N, M) request
    node of each serve slot (−1 = empty), ``mask`` (N, A) feasible actions and ``cand_rel``
    (N, A, 3) ego-relative candidate features."""
    c = sim.cfg
    side, T, W = c.network.side_km, c.steps, c.demand.patience
    n, V, M = sim.n, sim.V, sim.M
    pos = sim.positions()
    obs_vp = np.ones((n, V), dtype=bool) if full else sim.obs_vp
    obs_veh = ~np.eye(n, dtype=bool) if full else sim.obs_veh
    g = HeteroData()
    cl = [c.classes[k] for k in sim.cls]
    veh = np.stack([
        sim.capacity / NORM["cap"], sim.range_km / NORM["range"], sim.speed / NORM["speed"],
        np.array([x.comm_range_km for x in cl]) / NORM["comm"],
        np.array([x.obs_radius_km for x in cl]) / NORM["comm"],
        sim.cost_km / NORM["cost"], sim.charge_km / NORM["charge"],
        sim.soc / sim.range_km, sim.soc / NORM["range"], sim.load / sim.capacity,
        (sim.status != IDLE).astype(float), sim.remaining / 10.0,
        pos[:, 0] / side, pos[:, 1] / side, np.full(n, sim.t / T)], axis=1)
    g["vehicle"].x = torch.as_tensor(veh, dtype=torch.float32)
    g["rival"].x = torch.as_tensor(np.stack(
        [pos[:, 0] / side, pos[:, 1] / side, (sim.status != IDLE).astype(float)], 1),
        dtype=torch.float32)
    pend = np.flatnonzero(sim.r_status == PENDING)
    node_of = np.full(sim.n_requests, -1)
    node_of[pend] = np.arange(len(pend))
    o, d = sim.r_o[pend], sim.r_d[pend]
    req = np.stack([sim.vp[o, 0] / side, sim.vp[o, 1] / side, sim.vp[d, 0] / side,
                    sim.vp[d, 1] / side, sim.dist[o, d] / side, sim.r_q[pend] / NORM["cap"],
                    sim.r_fare[pend] / NORM["fare"], (sim.t - sim.r_t[pend]) / W], 1) \
        if len(pend) else np.zeros((0, REQ_F))
    g["request"].x = torch.as_tensor(req, dtype=torch.float32).reshape(-1, REQ_F)
    queue = np.bincount(o, minlength=V)
    qfare = np.bincount(o, weights=sim.r_fare[pend], minlength=V)
    vpx = np.stack([sim.vp[:, 0] / side, sim.vp[:, 1] / side, sim.is_depot.astype(float),
                    sim.charge_factor, queue / NORM["queue"], qfare / (2 * NORM["fare"])], 1)
    vtypes = vertiport_types(sim)
    if len(vtypes) == 1:
        groups = {"vertiport": np.arange(V)}
    else:
        groups = {"depot": np.flatnonzero(sim.is_depot), "client": np.flatnonzero(~sim.is_depot)}
    local = np.zeros(V, dtype=int)
    vtype_of = np.empty(V, dtype=object)
    for t, ids in groups.items():
        g[t].x = torch.as_tensor(vpx[ids], dtype=torch.float32).reshape(-1, VP_F)
        g[t].vid = torch.as_tensor(ids, dtype=torch.long)
        local[ids] = np.arange(len(ids))
        vtype_of[ids] = t
    # --- inter-agent edges: j → i when i observes j
    j, i = np.nonzero(obs_veh.T)
    same = sim.fleet[j] == sim.fleet[i]
    g["vehicle", "comm", "vehicle"].edge_index = _ei(j[same], i[same])
    g["rival", "comm", "vehicle"].edge_index = _ei(j[~same], i[~same])
    # --- intra-agent edges
    seen_src, seen_dst, opt_src, opt_dst = [], [], [], []
    for k in range(n):
        obs_req = pend[obs_vp[k, sim.r_o[pend]]] if len(pend) else pend
        seen_src += list(node_of[obs_req])
        seen_dst += [k] * len(obs_req)
        for m in range(M):
            if sim.mask[k, m]:
                opt_src.append(node_of[sim.slots[k, m]])
                opt_dst.append(k)
    g["request", "option_of", "vehicle"].edge_index = _ei(opt_src, opt_dst)
    g["request", "seen_by", "vehicle"].edge_index = _ei(seen_src, seen_dst)
    for t in groups:
        here = vtype_of[sim.loc] == t
        g[t, "hosts", "vehicle"].edge_index = _ei(local[sim.loc[here]], np.flatnonzero(here))
        kk, vv = np.nonzero(obs_vp)
        sel = vtype_of[vv] == t
        g[t, "seen_by", "vehicle"].edge_index = _ei(local[vv[sel]], kk[sel])
        rsel = vtype_of[o] == t if len(pend) else np.zeros(0, dtype=bool)
        g["request", "waiting_at", t].edge_index = _ei(np.flatnonzero(rsel), local[o[rsel]])
        g[t, "has", "request"].edge_index = _ei(local[o[rsel]], np.flatnonzero(rsel))
    # --- decoder inputs
    cand = np.where(sim.slots >= 0, np.append(node_of, -1)[np.maximum(sim.slots, 0)], -1)
    rel = np.zeros((n, sim.n_actions, REL_F))
    soc = np.maximum(sim.soc, 1e-6)
    for k in range(n):
        v = sim.loc[k]
        ids = sim.slots[k]
        ok = ids >= 0
        if ok.any():
            r = ids[ok]
            trip = sim.dist[sim.r_o[r], sim.r_d[r]]
            rel[k, : M][ok] = np.stack([trip / soc[k], sim.r_q[r] / sim.capacity[k],
                                        (sim.r_fare[r] - sim.cost_km[k] * trip) / NORM["fare"]], 1)
        rel[k, M: M + V] = np.stack([sim.dist[v] / side, sim.dist[v] / soc[k],
                                     (np.arange(V) == v).astype(float)], 1)
        rel[k, -1] = [0.0, 0.0, sim.soc[k] / sim.range_km[k]]
    g["vehicle"].fleet = torch.as_tensor(sim.fleet, dtype=torch.long)
    g["vehicle"].n_fleets = torch.full((n,), sim.n_fleets, dtype=torch.long)
    g["vehicle"].cand_req = torch.as_tensor(cand, dtype=torch.long)
    g["vehicle"].mask = torch.as_tensor(sim.mask)
    g["vehicle"].cand_rel = torch.as_tensor(np.clip(rel, -5, 5), dtype=torch.float32)
    return g


def ego_subgraph(g: HeteroData, ego: int, hops: int) -> tuple[HeteroData, int]:
    """The part of the global graph that can influence vehicle ``ego`` within ``hops`` rounds:
    the in-ball of radius ``hops`` around it, with request slots re-indexed.  Running the policy
    on it must give the same logits for ``ego`` as the global graph (§3.3, §3.7)."""
    keep = {t: torch.zeros(g[t].num_nodes, dtype=torch.bool) for t in g.node_types}
    keep["vehicle"][ego] = True
    frontier = {t: k.clone() for t, k in keep.items()}
    for _ in range(hops):
        new = {t: torch.zeros_like(k) for t, k in keep.items()}
        for (s, _, d), ei in g.edge_index_dict.items():
            if ei.numel():
                hit = frontier[d][ei[1]]
                new[s][ei[0][hit]] = True
        frontier = {t: new[t] & ~keep[t] for t in keep}
        keep = {t: keep[t] | new[t] for t in keep}
    idx = {t: torch.nonzero(k).flatten() for t, k in keep.items()}
    sub = g.subgraph(idx)
    remap = torch.full((g["request"].num_nodes + 1,), -1, dtype=torch.long)
    remap[idx["request"]] = torch.arange(len(idx["request"]))
    cr = sub["vehicle"].cand_req
    sub["vehicle"].cand_req = torch.where(cr >= 0, remap[cr.clamp(min=0)], cr)
    return sub, int((idx["vehicle"] == ego).nonzero()[0, 0])
