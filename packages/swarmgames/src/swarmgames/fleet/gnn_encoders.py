"""GNN-encoder baselines for the same pointer decoder (design note §3.5).

* ``gcn`` / ``gat`` / ``gatv2``: the heterogeneous graph flattened to a homogeneous one (features
  zero-padded to a common width plus a node-type one-hot, one shared input layer); relation
  types are lost, which is what these baselines isolate;
* ``rgcn``: the same homogeneous graph with one weight matrix per relation (``RGCNConv``; its
  pure-PyTorch path, no ``pyg_lib``/``torch_scatter`` needed);
* ``hgt``: ``HGTConv`` on the typed graph (type-specific K/Q/V and relation priors);
* ``mlp``: no message passing at all (per-type MLP; the "no communication, no context"
  ablation).

All return a dict of node-type embeddings and use the residual + LayerNorm update of the HetGAT
encoder, carrying forward node types that receive nothing.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.functional import elu
from torch_geometric.nn import GATConv, GATv2Conv, GCNConv, HGTConv, RGCNConv

Edges = dict[tuple[str, str, str], torch.Tensor]


class HomogeneousEncoder(nn.Module):
    """GCN, GAT, GATv2 or R-GCN on the flattened graph."""

    def __init__(self, dims: dict[str, int], relations: list[tuple[str, str, str]], d: int,
                 layers: int, heads: int, kind: str) -> None:
        super().__init__()
        self.types = list(dims)
        self.relations = list(relations)
        self.width = max(dims.values())
        self.kind = kind
        self.inp = nn.Linear(self.width + len(self.types), d)

        def make() -> nn.Module:
            if kind == "gcn":
                return GCNConv(d, d)
            if kind == "gat":
                return GATConv(d, d, heads=heads, concat=False)
            if kind == "gatv2":
                return GATv2Conv(d, d, heads=heads, concat=False)
            return RGCNConv(d, d, num_relations=len(self.relations))

        self.convs = nn.ModuleList([make() for _ in range(layers)])
        self.norms = nn.ModuleList([nn.LayerNorm(d) for _ in range(layers)])

    def forward(self, x: dict[str, torch.Tensor], edges: Edges) -> dict[str, torch.Tensor]:
        offs, rows, start = {}, [], 0
        for k, t in enumerate(self.types):
            xt = x[t]
            pad = xt.new_zeros(xt.shape[0], self.width + len(self.types))
            pad[:, : xt.shape[1]] = xt
            pad[:, self.width + k] = 1.0
            rows.append(pad)
            offs[t] = start
            start += xt.shape[0]
        h = self.inp(torch.cat(rows))
        eis, ets = [], []
        for r, rel in enumerate(self.relations):
            ei = edges[rel]
            eis.append(torch.stack([ei[0] + offs[rel[0]], ei[1] + offs[rel[2]]]))
            ets.append(torch.full((ei.shape[1],), r, dtype=torch.long))
        ei, et = torch.cat(eis, 1), torch.cat(ets)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            out = conv(h, ei, et) if self.kind == "rgcn" else conv(h, ei)
            h = norm(h + elu(out))
        return {t: h[offs[t]: offs[t] + x[t].shape[0]] for t in self.types}


class HGTEncoder(nn.Module):
    """Heterogeneous Graph Transformer layers (``HGTConv``) with residual + LayerNorm."""

    def __init__(self, dims: dict[str, int], relations: list[tuple[str, str, str]], d: int,
                 layers: int, heads: int) -> None:
        super().__init__()
        meta = (list(dims), list(relations))
        self.inp = nn.ModuleDict({t: nn.Linear(k, d) for t, k in dims.items()})
        self.convs = nn.ModuleList([HGTConv(d, d, meta, heads=heads) for _ in range(layers)])
        self.norms = nn.ModuleList([nn.ModuleDict({t: nn.LayerNorm(d) for t in dims})
                                    for _ in range(layers)])

    def forward(self, x: dict[str, torch.Tensor], edges: Edges) -> dict[str, torch.Tensor]:
        h = {t: self.inp[t](x[t]) for t in self.inp}
        for conv, norm in zip(self.convs, self.norms, strict=True):
            out = conv(h, edges)
            h = {t: norm[t](v + elu(out[t])) if out.get(t) is not None else v
                 for t, v in h.items()}
        return h


class MLPEncoder(nn.Module):
    """No message passing: each node sees only its own features."""

    def __init__(self, dims: dict[str, int], d: int) -> None:
        super().__init__()
        self.mlp = nn.ModuleDict({t: nn.Sequential(nn.Linear(k, d), nn.ELU(), nn.Linear(d, d),
                                                   nn.LayerNorm(d)) for t, k in dims.items()})

    def forward(self, x: dict[str, torch.Tensor], edges: Edges) -> dict[str, torch.Tensor]:
        return {t: m(x[t]) for t, m in self.mlp.items()}
