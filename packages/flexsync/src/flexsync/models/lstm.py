"""Two-layer LSTM language model (embedding 64, hidden 128; docs/methods.md §0.9).

Each training window starts from a zero state, so a batch is self-contained and the same
partitioners and samplers serve images and text.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class LSTMLanguageModel(nn.Module):
    def __init__(self, vocab: int, embed: int = 64, hidden: int = 128, layers: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, layers, batch_first=True, dropout=dropout)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(batch, time) token ids → (batch, time, vocab) logits."""
        out, _ = self.lstm(self.embed(tokens))
        return self.decoder(out)
