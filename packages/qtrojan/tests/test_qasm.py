"""Circuits leave the package intact: OpenQASM 3 and PennyLane scripts round-trip through
PennyLane to the same statevector as our simulator (clean and trojaned, both ansätze)."""

from __future__ import annotations

import math

import pytest
import torch

from qtrojan.attacks.qtrojan import build_config, deploy, select_target_state
from qtrojan.circuit import Circuit
from qtrojan.qasm import (
    qasm3_for_pennylane,
    qasm3_inputs,
    qasm3_wires,
    to_pennylane_script,
    to_qasm3,
)
from qtrojan.qnn import QNN

qml = pytest.importorskip("pennylane")
pytest.importorskip("openqasm3")


def _inputs(k: int, n: int, seed: int) -> torch.Tensor:
    return torch.rand(k, n, generator=torch.Generator().manual_seed(seed)) * math.pi


def _pl_state_from_qasm(text: str, n: int, x: torch.Tensor) -> torch.Tensor:
    program = qml.from_qasm3(qasm3_for_pennylane(text))
    names = qasm3_inputs(text)

    wires = qasm3_wires(text)
    assert len(wires) == n

    @qml.qnode(qml.device("default.qubit", wires=wires))
    def run(xi: list[float]) -> object:
        program(**dict(zip(names, xi, strict=True)))
        return qml.state()

    return torch.stack([torch.as_tensor(run([float(v) for v in row])) for row in x])


def _models() -> list[tuple[str, QNN, Circuit]]:
    out = []
    for ansatz in ("ryrz", "u3cu3"):
        model = QNN(3, 2, 3, ansatz=ansatz, seed=5)
        cfg = build_config(model, select_target_state(model, 1, "opt", steps=30))
        trojaned, _ = deploy(model, cfg)
        out += [(f"{ansatz}-clean", model, model.circuit), (f"{ansatz}-trojaned", model, trojaned)]
    return out


@pytest.mark.parametrize("case", range(4))
def test_qasm_round_trip_gives_the_same_statevector(case: int) -> None:
    name, model, circuit = _models()[case]
    weights = [float(w) for w in model.weights.detach()]
    text = to_qasm3(circuit, weights, name)
    assert qasm3_inputs(text) == [f"x_{i}" for i in range(circuit.n_inputs)]
    x = _inputs(5, circuit.n_inputs, case)
    ours = model.state(x, circuit, method="gates").to(torch.complex128)
    theirs = _pl_state_from_qasm(text, circuit.n_qubits, x)
    assert torch.allclose(ours, theirs, atol=2e-6), name
    # a changed weight literal must break the equality (the test can fail)
    broken = to_qasm3(circuit, [w + 0.1 for w in weights])
    assert not torch.allclose(ours, _pl_state_from_qasm(broken, circuit.n_qubits, x), atol=1e-3)


def test_trojaned_qasm_marks_the_inserted_gates() -> None:
    name, model, circuit = _models()[1]
    text = to_qasm3(circuit, [float(w) for w in model.weights.detach()])
    tagged = [line for line in text.splitlines() if line.endswith("// calibration")]
    assert len(tagged) == sum(op.tag == "calibration" for op in circuit.ops) > 0


def test_pennylane_script_round_trip(tmp_path) -> None:
    for name, model, circuit in _models():
        src = to_pennylane_script(circuit, [float(w) for w in model.weights.detach()],
                                  model.n_classes, name)
        ns: dict[str, object] = {}
        exec(compile(src, str(tmp_path / f"{name}.py"), "exec"), ns)  # noqa: S102
        x = _inputs(3, circuit.n_inputs, 7)
        expvals = torch.tensor([[float(v) for v in ns["qnode"](row.double())] for row in x])
        assert ns["N_READOUT"] == model.n_classes and ns["N_QUBITS"] == circuit.n_qubits
        assert torch.allclose(model(x, circuit) / model.tau, expvals.float(), atol=2e-6), name
