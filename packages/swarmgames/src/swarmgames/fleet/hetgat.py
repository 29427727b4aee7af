"""HetGAT encoder (design note §3.3 "Encoder"; Wang & Gombolay's HetGAT lineage).

For every relation r = (src → dst) a projection W_r and attention vector a_r (GATv2 scores
a_rᵀ LeakyReLU(W_r[h_i ‖ h_j]) by default, or GAT scores LeakyReLU(a_rᵀ[W_r h_i ‖ W_r h_j])),
softmax over each destination's r-neighbours, multi-head mean, summed over relations:

    h_i ← LayerNorm(h_i + ELU(Σ_r Σ_j α_ij^r W_r h_j))

Implemented with ``HeteroConv({r: GATv2Conv((d, d), d, heads=H, concat=False,
add_self_loops=False)}, aggr="sum")``.  Node types that receive no message in a layer (``rival``)
keep their previous embedding: the residual carry-forward of §7 gotcha 1.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch_geometric.nn import GATConv, GATv2Conv, HeteroConv


class HetGATEncoder(nn.Module):
    """Per-type input projections, then L HeteroConv layers of per-relation attention."""

    def __init__(self, dims: dict[str, int], relations: list[tuple[str, str, str]], d: int = 64,
                 layers: int = 2, heads: int = 4, attention: str = "gatv2") -> None:
        super().__init__()
        if attention not in ("gat", "gatv2"):
            raise ValueError(f"policy.attention: must be 'gat' or 'gatv2', got {attention!r}")
        conv = GATv2Conv if attention == "gatv2" else GATConv
        # rival nodes are never destinations by design; they are carried forward below
        warnings.filterwarnings("ignore", message="There exist node types")
        self.inp = nn.ModuleDict({t: nn.Linear(k, d) for t, k in dims.items()})
        self.convs = nn.ModuleList([
            HeteroConv({r: conv((d, d), d, heads=heads, concat=False, add_self_loops=False)
                        for r in relations}, aggr="sum") for _ in range(layers)])
        self.norms = nn.ModuleList([nn.ModuleDict({t: nn.LayerNorm(d) for t in dims})
                                    for _ in range(layers)])

    def forward(self, x: dict[str, torch.Tensor],
                edges: dict[tuple[str, str, str], torch.Tensor]) -> dict[str, torch.Tensor]:
        h = {t: self.inp[t](x[t]) for t in self.inp}
        for conv, norm in zip(self.convs, self.norms, strict=True):
            out = conv(h, edges)
            h = {t: norm[t](v + torch.nn.functional.elu(out[t]))
                 if out.get(t) is not None else v for t, v in h.items()}
        return h
