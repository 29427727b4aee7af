"""The victim quantum neural network (design qtrojan.md §1).

Angle encoding S(x), a layered ansatz W(theta), and readout ``logits_c = tau * <Z_c>`` for the
first ``C`` qubits (``C <= n``), followed by softmax cross-entropy in training. There are no
classical trainable parameters: the model is purely quantum. Weights start uniform in
``[0, 2 pi)`` from a seeded generator.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

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

    def to_dict(self) -> dict[str, Any]:
        """Architecture and weights as JSON-ready data (how a victim leaves the process)."""
        return {"n_qubits": self.n_qubits, "n_layers": self.n_layers,
                "n_classes": self.n_classes, "axes": self.axes, "ansatz": self.ansatz,
                "tau": self.tau, "weights": [float(w) for w in self.weights.detach()]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QNN:
        """Rebuild a model written by :meth:`to_dict`; names a missing or bad field."""
        keys = ("n_qubits", "n_layers", "n_classes", "axes", "ansatz", "tau", "weights")
        if not isinstance(data, dict):
            raise ValueError("model file must hold a JSON object")
        missing = [k for k in keys if k not in data]
        if missing:
            raise ValueError(f"model file lacks field(s) {missing}")
        model = cls(data["n_qubits"], data["n_layers"], data["n_classes"], data["axes"],
                    data["ansatz"], data["tau"])
        w = torch.tensor(data["weights"], dtype=torch.float32)
        if w.shape != model.weights.shape:
            raise ValueError(f"model file has {w.numel()} weights, the architecture needs "
                             f"{model.weights.numel()}")
        with torch.no_grad():
            model.weights.copy_(w)
        return model

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON."""
        Path(path).write_text(json.dumps(self.to_dict()) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> QNN:
        """Read a model written by :meth:`save`."""
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not a JSON model file: {e}") from e
        return cls.from_dict(data)

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
        return self.logits_from_expvals(expval_z(state, list(range(self.n_classes))))

    def logits_from_expvals(self, expvals: torch.Tensor) -> torch.Tensor:
        """Logits from ``<Z_c>`` of the readout wires ``c < C`` computed by other means (such
        as :func:`qtrojan.bipartite.basis_expvals`)."""
        return self.tau * expvals

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
                batch_size: int | None = None) -> torch.Tensor:
        """Class predictions (argmax of exact logits), in batches of at most 2**24 amplitudes
        (1024 rows up to 14 qubits)."""
        if batch_size is None:
            batch_size = max(1, min(1024, 2**24 // 2**self.n_qubits))
        out = [self.forward(x[i:i + batch_size], circuit).argmax(dim=1)
               for i in range(0, x.shape[0], batch_size)]
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)
