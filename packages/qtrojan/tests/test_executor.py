"""Planned (default) and Kronecker fast paths equal the gate-by-gate reference (§10 item 1)."""

from __future__ import annotations

import math

import pytest
import torch

from qtrojan.circuit import Circuit, Op, Param, angle_encoder, layered_ansatz, qnn_circuit
from qtrojan.executor import (
    _Local,
    _Perm,
    execute,
    plan,
    run_fast,
    run_gates,
    run_planned,
    unitary_rows,
)


def _inputs(circuit: Circuit, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, circuit.n_inputs, generator=gen) * math.pi
    w = torch.rand(circuit.n_weights, generator=gen) * 2 * math.pi
    return x, w


@pytest.mark.parametrize("n", [2, 4, 6])
@pytest.mark.parametrize("use_unitary", [True, False])
def test_fast_path_equals_gate_path(n: int, use_unitary: bool) -> None:
    c = qnn_circuit(n, 3)
    x, w = _inputs(c, 9, n)
    ref = run_gates(c, x, w)
    assert torch.allclose(run_fast(c, x, w, use_unitary=use_unitary), ref, atol=1e-5)


@pytest.mark.parametrize("axes", ["X", "YZ", "XYZ"])
def test_fast_path_other_encoders_and_u3cu3(axes: str) -> None:
    c = qnn_circuit(3, 2, axes=axes, kind="u3cu3")
    x, w = _inputs(c, 10, 7)
    assert torch.allclose(execute(c, x, w, "fast"), execute(c, x, w, "gates"), atol=1e-5)


def test_fast_path_with_data_reuploading_falls_back_to_direct() -> None:
    n = 3
    second = layered_ansatz(n, 1, weight_offset=6)
    c = angle_encoder(n) + layered_ansatz(n, 1) + angle_encoder(n) + second
    x, w = _inputs(c, 20, 8)
    assert torch.allclose(run_fast(c, x, w), run_gates(c, x, w), atol=1e-5)


def test_states_are_normalised_and_unitary_rows_are_unitary() -> None:
    c = qnn_circuit(4, 2)
    x, w = _inputs(c, 32, 9)
    norms = execute(c, x, w).abs().pow(2).sum(1)
    assert torch.allclose(norms, torch.ones(32), atol=1e-5)
    t = unitary_rows(layered_ansatz(4, 2).ops, 4, w)
    assert torch.allclose(t @ t.conj().T, torch.eye(16, dtype=t.dtype), atol=1e-5)
    with pytest.raises(ValueError, match="data-independent"):
        unitary_rows(c.ops, 4, w)


def test_input_validation() -> None:
    c = qnn_circuit(3, 1)
    with pytest.raises(ValueError, match="input features"):
        execute(c, torch.zeros(2, 2), torch.zeros(c.n_weights))
    with pytest.raises(ValueError, match="method"):
        execute(c, torch.zeros(2, 3), torch.zeros(c.n_weights), "magic")
    bad = Circuit(1, (Op("RX", (0,), (Param("weight", 5),)),))
    with pytest.raises(ValueError, match="weight 5"):
        execute(bad, torch.zeros(1, 0), torch.zeros(2))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("kind", ["ryrz", "u3cu3"])
def test_planned_path_equals_gate_path(n: int, kind: str) -> None:
    if n == 1 and kind == "u3cu3":
        pytest.skip("no ring on one qubit")
    for axes in ("Y", "XZ"):
        c = qnn_circuit(n, 3, axes=axes, kind=kind)
        x, w = _inputs(c, 11, n)
        assert torch.allclose(run_planned(c, x, w), run_gates(c, x, w), atol=1e-6)


def test_planned_path_mixed_sources_reuploading_and_gradients() -> None:
    c = Circuit(3, (Op("RX", (1,), (Param("const", value=0.3),)),
                    Op("RY", (0,), (Param("input", 1),)),
                    Op("CZ", (0, 2)),
                    Op("RZ", (2,), (Param("weight", 0),)),
                    Op("RX", (0,), (Param("input", 0),)),        # re-uploading after CZ
                    Op("RZ", (1,), (Param("config", value=1.0, key="k"),)),
                    Op("CNOT", (2, 1)), Op("CRX", (0, 1), (Param("weight", 1),))))
    x, _ = _inputs(c, 6, 3)
    w = (torch.rand(2, generator=torch.Generator().manual_seed(4)) * 6).requires_grad_(True)
    assert torch.allclose(run_planned(c, x, w), run_gates(c, x, w), atol=1e-6)
    steps = plan(c, 2, 2)
    assert isinstance(steps[0], _Local) and isinstance(steps[1], _Perm)
    # gradients through the planned path equal those through the reference path
    g1 = torch.autograd.grad(run_planned(c, x, w).abs().pow(2)[:, 3].sum(), w)[0]
    g2 = torch.autograd.grad(run_gates(c, x, w).abs().pow(2)[:, 3].sum(), w)[0]
    assert torch.allclose(g1, g2, atol=1e-5)


def test_planned_path_on_compiled_trojan_circuits_with_a_tail() -> None:
    """Config angles, a continuous tail and weights of one gate name built in one batch."""
    from qtrojan.attacks.qtrojan import build_config, deploy, select_target_state
    from qtrojan.qnn import QNN

    model = QNN(4, 2, 4, seed=0)
    for mode in ("basis", "opt"):
        state = select_target_state(model, 0, mode, steps=20)
        circuit, _ = deploy(model, build_config(model, state))
        x, _ = _inputs(circuit, 5, 1)
        w = model.weights.detach()
        assert torch.allclose(run_planned(circuit, x, w), run_gates(circuit, x, w), atol=1e-6)


def test_planned_path_at_thirteen_qubits() -> None:
    """Above 8 qubits the layer is split into several Kronecker factors (<= 4 wires each)."""
    c = qnn_circuit(13, 1)
    x, w = _inputs(c, 3, 13)
    assert torch.allclose(run_planned(c, x, w), run_gates(c, x, w), atol=1e-6)
