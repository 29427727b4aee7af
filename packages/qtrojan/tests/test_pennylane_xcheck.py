"""Optional cross-check against PennyLane ``default.qubit`` (design §10 item 3).

The IR is translated op by op into PennyLane gates, so the compiled (trojaned) circuit is checked
as well as the clean one. Skipped when PennyLane is not installed (extra ``xcheck``).
"""

from __future__ import annotations

import math

import pytest
import torch

from qtrojan.attacks.qtrojan import build_config, deploy, select_target_state
from qtrojan.circuit import Circuit
from qtrojan.qnn import QNN

qml = pytest.importorskip("pennylane")

_GATES = {"RX": "RX", "RY": "RY", "RZ": "RZ", "CNOT": "CNOT", "CZ": "CZ", "CRX": "CRX"}


def _pennylane_expvals(circuit: Circuit, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    n = circuit.n_qubits
    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev, interface="torch", diff_method="backprop")
    def run(xi: torch.Tensor) -> list:
        for op in circuit.ops:
            vals = []
            for p in op.params:
                if p.kind == "input":
                    vals.append(xi[p.index])
                elif p.kind == "weight":
                    vals.append(w[p.index])
                else:
                    vals.append(torch.tensor(p.value, dtype=torch.float64))
            getattr(qml, _GATES[op.name])(*vals, wires=list(op.wires))
        return [qml.expval(qml.PauliZ(i)) for i in range(n)]

    return torch.stack([torch.stack(run(xi.double())) for xi in x])


def test_matches_pennylane_output_and_gradient() -> None:
    model = QNN(3, 2, 3, seed=3)
    x = torch.rand(4, 3, generator=torch.Generator().manual_seed(0)) * math.pi
    w64 = model.weights.detach().double().requires_grad_(True)
    ref = _pennylane_expvals(model.circuit, x, w64)
    ref.sum().backward()
    ours = model(x) / model.tau
    ours.sum().backward()
    assert torch.allclose(ours.double(), ref.detach(), atol=1e-5)
    assert torch.allclose(model.weights.grad.double(), w64.grad, atol=1e-4)


def test_trojaned_circuit_matches_pennylane() -> None:
    model = QNN(3, 2, 3, seed=4)
    x = torch.rand(5, 3, generator=torch.Generator().manual_seed(1)) * math.pi
    circ, _ = deploy(model, build_config(model, select_target_state(model, 2)))
    ref = _pennylane_expvals(circ, x, model.weights.detach().double())
    assert torch.allclose((model(x, circ) / model.tau).double(), ref, atol=1e-5)
    assert ref.std(dim=0).max() < 1e-6  # PennyLane agrees the output ignores the input
