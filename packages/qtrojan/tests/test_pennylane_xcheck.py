"""Optional cross-check against PennyLane ``default.qubit`` (design §10 item 3)."""

from __future__ import annotations

import math

import pytest
import torch

from qtrojan.qnn import QNN

qml = pytest.importorskip("pennylane")


def test_matches_pennylane_output_and_gradient() -> None:
    n, layers = 3, 2
    model = QNN(n, layers, 3, seed=3)
    x = torch.rand(4, n, generator=torch.Generator().manual_seed(0)) * math.pi
    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev, interface="torch", diff_method="backprop")
    def circuit(xi: torch.Tensor, w: torch.Tensor) -> list:
        for i in range(n):
            qml.RY(xi[i], wires=i)
        k = 0
        for _ in range(layers):
            for i in range(n):
                qml.RY(w[k], wires=i)
                qml.RZ(w[k + 1], wires=i)
                k += 2
            for i in range(n):
                qml.CNOT(wires=[i, (i + 1) % n])
        return [qml.expval(qml.PauliZ(i)) for i in range(n)]

    w64 = model.weights.detach().double().requires_grad_(True)
    ref = torch.stack([torch.stack(circuit(xi.double(), w64)) for xi in x])
    ref.sum().backward()
    ours = model(x) / model.tau
    ours.sum().backward()
    assert torch.allclose(ours.double(), ref.detach(), atol=1e-5)
    assert torch.allclose(model.weights.grad.double(), w64.grad, atol=1e-4)
