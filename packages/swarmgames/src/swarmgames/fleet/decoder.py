"""Attention/pointer decoder over an agent's candidate set (design note §3.3 "Decoder"; Kool
et al.'s AM decoder).

Candidates K = M_max request slots ∪ V vertiports ∪ {learned no-op}; each key is the encoder
embedding plus a projection of its ego-relative features (trip/range left, load fraction, net
margin; distance, distance/range left, is-current).  Context q = W_q[h_ego ‖ mean of feasible
keys]; one multi-head glimpse q′ = MHA(q, K_feasible); logits

    ℓ_k = C · tanh(q′ᵀ W_k k_k / √d),   C = 10,

and ℓ_k = −∞ for infeasible k, so π(·|o_i) = softmax(ℓ) puts exactly zero mass there.
``kind: mlp`` replaces glimpse + pointer by an MLP score of [h_ego ‖ k_k] (the no-decoder
ablation of §3.5).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from swarmgames.fleet.hetgraph import REL_F


class PointerDecoder(nn.Module):
    """Masked pointer decoder; permutation-equivariant in the candidate order."""

    def __init__(self, d: int, heads: int, clip: float = 10.0, kind: str = "pointer") -> None:
        super().__init__()
        if kind not in ("pointer", "mlp"):
            raise ValueError(f"policy.decoder: must be 'pointer' or 'mlp', got {kind!r}")
        self.d, self.clip, self.kind = d, clip, kind
        self.noop = nn.Parameter(torch.randn(d) * 0.1)
        self.rel = nn.Linear(REL_F, d)
        self.cand_type = nn.Embedding(3, d)
        self.wq = nn.Linear(2 * d, d)
        self.glimpse = nn.MultiheadAttention(d, heads, batch_first=True)
        self.wk = nn.Linear(d, d, bias=False)
        self.score = nn.Sequential(nn.Linear(2 * d, d), nn.ELU(), nn.Linear(d, 1))

    def keys(self, req: torch.Tensor, vp: torch.Tensor, rel: torch.Tensor) -> torch.Tensor:
        """(B, A, d) candidate keys from request-slot and vertiport embeddings."""
        b = req.shape[0]
        noop = self.noop.expand(b, 1, self.d)
        types = torch.cat([torch.zeros(req.shape[1]), torch.ones(vp.shape[1]),
                           torch.full((1,), 2.0)]).long()
        return torch.cat([req, vp, noop], 1) + self.cand_type(types)[None] + self.rel(rel)

    def forward(self, h_ego: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor
                ) -> torch.Tensor:
        """Logits (B, A) with −inf on infeasible candidates."""
        m = mask.float().unsqueeze(-1)
        pooled = (keys * m).sum(1) / m.sum(1).clamp(min=1.0)
        if self.kind == "mlp":
            s = self.score(torch.cat([h_ego[:, None].expand_as(keys), keys], -1)).squeeze(-1)
        else:
            q = self.wq(torch.cat([h_ego, pooled], -1))[:, None]
            g, _ = self.glimpse(q, keys, keys, key_padding_mask=~mask, need_weights=False)
            s = (g * self.wk(keys)).sum(-1) / math.sqrt(self.d)
        return (self.clip * torch.tanh(s)).masked_fill(~mask, float("-inf"))
