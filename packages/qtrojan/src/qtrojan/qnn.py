"""The victim quantum neural network (design qtrojan.md §1).

Angle encoding S(x), a layered ansatz W(theta), and readout ``logits_c = tau * <Z_c>`` for the
first ``C`` qubits (``C <= n``), followed by softmax cross-entropy in training. There are no
classical trainable parameters: the model is purely quantum. Weights start uniform in
``[0, 2 pi)`` from a seeded generator.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qtrojan.circuit import Circuit, ansatz_weight_count, qnn_circuit
from qtrojan.executor import execute
from qtrojan.sim import expval_z, sample_expval_z


class QNN(nn.Module):
    """Quantum classifier; ``forward`` can run any compiled version of its circuit."""

    def __init__(self, n_qubits: int, n_layers: int, n_classes: int, axes: str = "Y",
                 ansatz: str = "ryrz", tau: float = 3.0, seed: int = 0) -> None:
        super().__init__()
        if not 2 <= n_classes <= n_qubits:
            raise ValueError(f"n_classes must be in [2, n_qubits={n_qubits}], got {n_classes}")
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        self.n_qubits = n_qubits
        self.n_layers = n_layers
        self.n_classes = n_classes
        self.axes = axes
        self.ansatz = ansatz
        self.tau = float(tau)
        self.circuit: Circuit = qnn_circuit(n_qubits, n_layers, axes, ansatz)
        gen = torch.Generator().manual_seed(seed)
        n_w = ansatz_weight_count(n_qubits, n_layers, ansatz)
        self.weights = nn.Parameter(torch.rand(n_w, generator=gen) * (2 * math.pi))

    @property
    def n_features(self) -> int:
        """Number of input features (angles) the encoder reads."""
        return self.circuit.n_inputs

    def state(self, x: torch.Tensor, circuit: Circuit | None = None,
              method: str = "fast") -> torch.Tensor:
        """Final statevector for each row of ``x`` (the clean circuit unless one is given)."""
        return execute(circuit or self.circuit, x, self.weights, method)

    def readout(self, state: torch.Tensor) -> torch.Tensor:
        """Exact logits ``tau * <Z_c>``, ``c < C``."""
        return self.tau * expval_z(state, list(range(self.n_classes)))

    def forward(self, x: torch.Tensor, circuit: Circuit | None = None,
                method: str = "fast") -> torch.Tensor:
        """Exact logits for a batch of inputs."""
        return self.readout(self.state(x, circuit, method))

    def sampled_logits(self, x: torch.Tensor, shots: int, generator: torch.Generator,
                       circuit: Circuit | None = None) -> torch.Tensor:
        """Logits from finite-shot estimates of ``<Z_c>`` (design §4, sampling ASR)."""
        with torch.no_grad():
            st = self.state(x, circuit)
        return self.tau * sample_expval_z(st, shots, generator, list(range(self.n_classes)))

    @torch.no_grad()
    def predict(self, x: torch.Tensor, circuit: Circuit | None = None,
                batch_size: int = 1024) -> torch.Tensor:
        """Class predictions (argmax of exact logits)."""
        out = [self.forward(x[i:i + batch_size], circuit).argmax(dim=1)
               for i in range(0, x.shape[0], batch_size)]
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)
