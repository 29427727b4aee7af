"""A small decoder-only transformer language model (issue #23, "Workloads": pre-LayerNorm,
causal attention with ``scaled_dot_product_attention``, tied embeddings, presets from about
1 M to about 25 M parameters).

Why this shape: it is the GPT-2 block at small scale, so the gradient structure the
communication strategies see (large embedding/attention matrices, LayerNorm vectors) is that
of the models the compression papers measured, at a size a CPU can train.

Architecture: token embedding + learned positional embedding → ``depth`` pre-LN blocks
(``x + Attn(LN(x))``, ``x + MLP(LN(x))``, MLP ``width → 4·width → width`` with GELU) → final
LayerNorm → logits through the transposed token embedding (tied, no output bias). No dropout
by default. Initialisation as GPT-2: every Linear and Embedding weight ~ N(0, 0.02²), biases
zero, LayerNorm (1, 0), and the two residual output projections of each block (attention
``proj`` and MLP ``fc2``) ~ N(0, (0.02 / √(2·depth))²), so the residual stream's variance does
not grow with depth.

Parameter count, with V = vocab, T = block, d = width, L = depth (:func:`param_count`)::

    P = (V + T)·d  +  L·(12·d² + 13·d)  +  2·d

per block: LN 2d, qkv 3d² + 3d, proj d² + d, LN 2d, fc1 4d² + 4d, fc2 4d² + d; final LN 2d; the
output layer adds nothing (tied). At V = 256, T = 128 the presets are

====== ===== ===== ===== ============
preset width depth heads parameters
====== ===== ===== ===== ============
xs      128    5     4     1,040,768
s       192    8     6     3,633,024
m       320    8     5     9,987,200
l       512    8     8    25,416,704
====== ===== ===== ===== ============

(heads chosen for head dimensions of 32 or 64).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

#: (width, depth, heads) per size name.
PRESETS: dict[str, tuple[int, int, int]] = {
    "xs": (128, 5, 4),
    "s": (192, 8, 6),
    "m": (320, 8, 5),
    "l": (512, 8, 8),
}


def param_count(vocab: int, block: int, width: int, depth: int) -> int:
    """Closed-form number of parameters of :class:`TransformerLM` (module doc)."""
    d = width
    return (vocab + block) * d + depth * (12 * d * d + 13 * d) + 2 * d


class CausalSelfAttention(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads, dropout)
        self.ln2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.drop(self.fc2(F.gelu(self.fc1(self.ln2(x)))))


class TransformerLM(nn.Module):
    """Decoder-only LM; ``forward`` maps (batch, time ≤ block) ids to (batch, time, vocab)
    logits, the same contract as :class:`flexsync.models.lstm.LSTMLanguageModel`."""

    def __init__(self, vocab: int, block: int, width: int, depth: int, heads: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.block = block
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Embedding(block, width)
        self.blocks = nn.ModuleList(Block(width, heads, dropout) for _ in range(depth))
        self.ln_f = nn.LayerNorm(width)
        self.drop = nn.Dropout(dropout)
        self._init(depth)

    def _init(self, depth: int) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        for blk in self.blocks:
            for proj in (blk.attn.proj, blk.fc2):
                nn.init.normal_(proj.weight, mean=0.0, std=0.02 / math.sqrt(2 * depth))

    @classmethod
    def from_preset(cls, name: str, vocab: int, block: int, dropout: float = 0.0
                    ) -> TransformerLM:
        """Build a named size (:data:`PRESETS`)."""
        if name not in PRESETS:
            raise ValueError(f"unknown transformer preset {name!r}; expected one of "
                             f"{sorted(PRESETS)}")
        width, depth, heads = PRESETS[name]
        return cls(vocab, block, width, depth, heads, dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(batch, time) token ids → (batch, time, vocab) logits."""
        t = tokens.shape[1]
        if t > self.block:
            raise ValueError(f"sequence length {t} exceeds the block size {self.block}")
        pos = torch.arange(t, device=tokens.device)
        x = self.drop(self.tok(tokens) + self.pos(pos))
        for blk in self.blocks:
            x = blk(x)
        return self.ln_f(x) @ self.tok.weight.t()
