"""Noisy execution: strength 0 is the noiseless result, the channels match PennyLane's
``default.mixed``, and the limits behave as the channel algebra says."""

from __future__ import annotations

import math

import pytest
import torch

from qtrojan.attacks.qtrojan import build_config, deploy, select_target_state
from qtrojan.circuit import Circuit
from qtrojan.noise import (
    NoiseModel,
    density_matrix,
    depolarize,
    noisy_expval_z,
    noisy_sampled_expval_z,
)
from qtrojan.qnn import QNN


def _x(k: int, n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(k, n, generator=torch.Generator().manual_seed(seed)) * math.pi


def _circuits() -> list[tuple[QNN, Circuit]]:
    model = QNN(3, 2, 3, seed=2)
    on, _ = deploy(model, build_config(model, select_target_state(model, 1)))
    return [(model, model.circuit), (model, on)]


def test_strength_zero_equals_the_statevector() -> None:
    for model, circuit in _circuits():
        x = _x(6, 3)
        psi = model.state(x, circuit, method="gates")
        rho = density_matrix(circuit, x, model.weights.detach(), NoiseModel())
        pure = psi[:, :, None] * psi.conj()[:, None, :]
        assert torch.allclose(rho, pure, atol=1e-6)
        ev = noisy_expval_z(circuit, x, model.weights.detach(), NoiseModel(), [0, 1, 2])
        assert torch.allclose(ev, model(x, circuit).detach() / model.tau, atol=1e-6)


def test_depolarising_keeps_trace_and_hermiticity_and_full_strength_mixes() -> None:
    model, circuit = _circuits()[0]
    x = _x(4, 3, 1)
    rho = density_matrix(circuit, x, model.weights.detach(), NoiseModel(depolarizing=0.05))
    tr = torch.diagonal(rho, dim1=1, dim2=2).sum(-1)
    assert torch.allclose(tr.real, torch.ones(4), atol=1e-5) and tr.imag.abs().max() < 1e-6
    assert torch.allclose(rho, rho.conj().transpose(1, 2), atol=1e-6)
    purity = torch.einsum("bij,bji->b", rho, rho).real
    assert purity.max() < 0.99  # noise made the state mixed
    # p = 3/4 on every wire replaces the state by I/2^n (the gates touch all wires)
    full = density_matrix(circuit, x, model.weights.detach(), NoiseModel(depolarizing=0.75))
    assert torch.allclose(full, torch.eye(8, dtype=full.dtype).expand(4, 8, 8) / 8, atol=1e-6)
    # the channel on one wire: |0><0| -> (1 - 2p/3)|0><0| + 2p/3 |1><1|
    rho0 = torch.zeros(1, 2, 2, dtype=torch.complex64)
    rho0[0, 0, 0] = 1
    out = depolarize(rho0, 0, 0.3, 1)
    assert out[0, 1, 1].real.item() == pytest.approx(0.2) and out[0, 0, 1].abs().item() == 0


def test_readout_flips_scale_expectations_and_samples() -> None:
    model, circuit = _circuits()[1]
    x = _x(3, 3, 2)
    w = model.weights.detach()
    exact = noisy_expval_z(circuit, x, w, NoiseModel(), [0, 1, 2])
    flipped = noisy_expval_z(circuit, x, w, NoiseModel(readout=0.1), [0, 1, 2])
    assert torch.allclose(flipped, 0.8 * exact, atol=1e-6)
    assert noisy_expval_z(circuit, x, w, NoiseModel(readout=0.5), [0]).abs().max() < 1e-7
    gen = torch.Generator().manual_seed(0)
    sampled = noisy_sampled_expval_z(circuit, x, w, NoiseModel(readout=0.1), [0, 1, 2],
                                     200_000, gen)
    assert torch.allclose(sampled, flipped, atol=0.01)


def test_bad_strength_is_rejected() -> None:
    with pytest.raises(ValueError, match="depolarizing"):
        NoiseModel(depolarizing=0.9)
    with pytest.raises(ValueError, match="readout"):
        NoiseModel(readout=-0.1)


def test_matches_pennylane_default_mixed() -> None:
    qml = pytest.importorskip("pennylane")
    model, circuit = _circuits()[1]
    x = _x(2, 3, 3)
    w = model.weights.detach().double()
    p, q = 0.02, 0.05
    # readout flips as BitFlip channels before measurement (default.mixed's own readout_prob
    # raises a TypeError in PennyLane 0.45 when an expectation value is measured)
    dev = qml.device("default.mixed", wires=3)

    @qml.qnode(dev)
    def run(xi: torch.Tensor) -> list:
        for op in circuit.ops:
            vals = [xi[a.index] if a.kind == "input" else w[a.index] if a.kind == "weight"
                    else a.value for a in op.params]
            getattr(qml, op.name)(*vals, wires=list(op.wires))
            for wire in op.wires:
                qml.DepolarizingChannel(p, wires=wire)
        for wire in range(3):
            qml.BitFlip(q, wires=wire)
        return [qml.expval(qml.PauliZ(i)) for i in range(3)]

    ref = torch.tensor([[float(v) for v in run(xi.double())] for xi in x], dtype=torch.float64)
    ours = noisy_expval_z(circuit, x, model.weights.detach(), NoiseModel(p, q), [0, 1, 2])
    assert torch.allclose(ours.double(), ref, atol=1e-5)
