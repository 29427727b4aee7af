"""Shared-parameter fleet policy: encoder + pointer decoder + critic (design note §3.3, §3.4).

One set of weights runs every vehicle of every fleet; heterogeneity enters only through node
features and edge types, so the same weights run on other compositions and sizes.  Critics:

* ``mappo``: centralised per-fleet V_f(s) from a separate encoder on the *full* global graph
  (every vehicle, vertiport and request), pooled per type, the own fleet's vehicles separately;
* ``ippo``: V(o_i) from h_ego of the actor encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch_geometric.data import HeteroData
from torch_geometric.utils import scatter

from swarmgames.core.config import check
from swarmgames.fleet.decoder import PointerDecoder
from swarmgames.fleet.gnn_encoders import HGTEncoder, HomogeneousEncoder, MLPEncoder
from swarmgames.fleet.hetgat import HetGATEncoder
from swarmgames.fleet.hetgraph import metadata, node_dims

ENCODERS = ("hetgat", "gcn", "gat", "gatv2", "rgcn", "hgt", "mlp")


@dataclass(frozen=True)
class PolicyConfig:
    """Policy architecture (§3.3): encoder kind, width d, layers L, heads H, attention variant,
    decoder kind, logit clip C, critic kind."""

    encoder: str = "hetgat"
    d: int = 64
    layers: int = 2
    heads: int = 4
    attention: str = "gatv2"
    decoder: str = "pointer"
    clip: float = 10.0
    critic: str = "mappo"

    def __post_init__(self) -> None:
        check(self.encoder in ENCODERS, "encoder", f"must be one of {list(ENCODERS)}")
        check(self.d >= 4 and self.d % self.heads == 0, "d", "must be >= 4 and divisible by heads")
        check(self.layers >= 1, "layers", "must be >= 1")
        check(self.heads >= 1, "heads", "must be >= 1")
        check(self.attention in ("gat", "gatv2"), "attention", "must be 'gat' or 'gatv2'")
        check(self.decoder in ("pointer", "mlp"), "decoder", "must be 'pointer' or 'mlp'")
        check(self.clip > 0, "clip", "must be > 0")
        check(self.critic in ("mappo", "ippo"), "critic", "must be 'mappo' or 'ippo'")


def make_encoder(cfg: PolicyConfig, vp_types: tuple[str, ...]) -> nn.Module:
    dims, rels = node_dims(vp_types), metadata(vp_types)[1]
    if cfg.encoder == "hetgat":
        return HetGATEncoder(dims, rels, cfg.d, cfg.layers, cfg.heads, cfg.attention)
    if cfg.encoder == "hgt":
        return HGTEncoder(dims, rels, cfg.d, cfg.layers, cfg.heads)
    if cfg.encoder == "mlp":
        return MLPEncoder(dims, cfg.d)
    return HomogeneousEncoder(dims, rels, cfg.d, cfg.layers, cfg.heads, cfg.encoder)


def _batch_vec(g: HeteroData, t: str) -> torch.Tensor:
    s = g[t]
    return s.batch if "batch" in s else torch.zeros(s.num_nodes, dtype=torch.long)


def _num_graphs(g: HeteroData) -> int:
    return int(g.num_graphs) if hasattr(g, "num_graphs") and "batch" in g["vehicle"] else 1


class FleetPolicy(nn.Module):
    """Actor (encoder + decoder) and critic; ``logits(g, sel)`` and ``values(...)``."""

    def __init__(self, cfg: PolicyConfig, vp_types: tuple[str, ...], n_fleets: int = 2) -> None:
        super().__init__()
        self.cfg, self.vp_types = cfg, tuple(vp_types)
        d = cfg.d
        self.encoder = make_encoder(cfg, self.vp_types)
        self.decoder = PointerDecoder(d, cfg.heads, cfg.clip, cfg.decoder)
        if cfg.critic == "mappo":
            self.critic_encoder = make_encoder(cfg, self.vp_types)
            self.value = nn.Sequential(nn.Linear(4 * d, d), nn.ELU(), nn.Linear(d, 1))
        else:
            self.value = nn.Sequential(nn.Linear(d, d), nn.ELU(), nn.Linear(d, 1))

    # ------------------------------------------------------------------ actor
    def embed(self, g: HeteroData) -> dict[str, torch.Tensor]:
        return self.encoder(g.x_dict, g.edge_index_dict)

    def logits(self, g: HeteroData, sel: torch.Tensor | None = None,
               h: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """(B, A) masked logits of the vehicle nodes ``sel`` (default: all) of graph/batch g."""
        h = self.embed(g) if h is None else h
        veh = g["vehicle"]
        sel = torch.arange(veh.num_nodes) if sel is None else sel
        d = self.cfg.d
        vb = _batch_vec(g, "vehicle")[sel]
        cand = veh.cand_req[sel]
        req_off = g["request"].ptr[vb] if "ptr" in g["request"] else torch.zeros_like(vb)
        hr = torch.cat([h["request"], h["request"].new_zeros(1, d)])
        req_idx = torch.where(cand >= 0, cand + req_off[:, None], hr.shape[0] - 1)
        n_vp = veh.mask.shape[1] - cand.shape[1] - 1
        hv = torch.cat([h[t] for t in self.vp_types] + [hr.new_zeros(1, d)])
        vid = torch.cat([g[t].vid for t in self.vp_types])
        gid = torch.cat([_batch_vec(g, t) for t in self.vp_types])
        table = torch.full((_num_graphs(g), n_vp), hv.shape[0] - 1, dtype=torch.long)
        table[gid, vid] = torch.arange(len(vid))
        keys = self.decoder.keys(hr[req_idx], hv[table[vb]], veh.cand_rel[sel])
        return self.decoder(h["vehicle"][sel], keys, veh.mask[sel])

    # ------------------------------------------------------------------ critic
    def values(self, g: HeteroData, sel: torch.Tensor, gc: HeteroData | None = None,
               h: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """V for the vehicle nodes ``sel``: V_{f_i}(s) (mappo, from the full graph ``gc``) or
        V(o_i) (ippo, from the actor's h_ego)."""
        if self.cfg.critic == "ippo":
            h = self.embed(g) if h is None else h
            return self.value(h["vehicle"][sel]).squeeze(-1)
        assert gc is not None, "mappo critic needs the full-information graph"
        hc = self.critic_encoder(gc.x_dict, gc.edge_index_dict)
        ng = _num_graphs(gc)
        vb = _batch_vec(gc, "vehicle")
        fleet = gc["vehicle"].fleet
        nf = int(gc["vehicle"].n_fleets.max()) if "n_fleets" in gc["vehicle"] else int(
            fleet.max()) + 1
        own = scatter(hc["vehicle"], vb * nf + fleet, 0, dim_size=ng * nf, reduce="mean")
        allv = scatter(hc["vehicle"], vb, 0, dim_size=ng, reduce="mean")
        req = scatter(hc["request"], _batch_vec(gc, "request"), 0, dim_size=ng, reduce="mean")
        hvp = torch.cat([hc[t] for t in self.vp_types])
        vpb = torch.cat([_batch_vec(gc, t) for t in self.vp_types])
        vp = scatter(hvp, vpb, 0, dim_size=ng, reduce="mean")
        vb_s, f_s = vb[sel], fleet[sel]
        z = torch.cat([own[vb_s * nf + f_s], allv[vb_s], req[vb_s], vp[vb_s]], -1)
        return self.value(z).squeeze(-1)
