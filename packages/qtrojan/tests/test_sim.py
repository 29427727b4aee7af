"""Gate algebra and readout of the statevector simulator (design §10 item 1)."""

from __future__ import annotations

import math

import pytest
import torch

from qtrojan import sim


def _random_angles(gen: torch.Generator, k: int, batch: int | None = None) -> list[torch.Tensor]:
    shape = () if batch is None else (batch,)
    return [(torch.rand(shape, generator=gen) * 4 - 2) * math.pi for _ in range(k)]


@pytest.mark.parametrize("name", sorted(sim.GATES))
@pytest.mark.parametrize("batch", [None, 5])
def test_every_gate_is_unitary(name: str, batch: int | None) -> None:
    gen = torch.Generator().manual_seed(1)
    n_wires, n_par, _ = sim.GATES[name]
    m = sim.gate_matrix(name, *_random_angles(gen, n_par, batch if n_par else None))
    eye = torch.eye(2**n_wires, dtype=m.dtype)
    prod = m @ m.conj().transpose(-1, -2)
    assert torch.allclose(prod, eye.expand_as(prod), atol=1e-6)


def test_rotation_identities() -> None:
    one = torch.tensor([0, 1], dtype=sim.CDTYPE)
    psi = sim.ry(math.pi) @ torch.tensor([1, 0], dtype=sim.CDTYPE)
    assert torch.allclose(psi, one, atol=1e-7)
    for fn in (sim.rx, sim.ry, sim.rz):
        assert torch.equal(fn(0.0), torch.eye(2, dtype=sim.CDTYPE))
    # U3(theta, phi, lam) equals RZ(phi) RY(theta) RZ(lam) up to a global phase
    t, p, lm = 0.7, -1.3, 2.1
    a = sim.u3(t, p, lm)
    b = sim.rz(p) @ sim.ry(t) @ sim.rz(lm)
    phase = a[0, 0] / b[0, 0]
    assert abs(abs(phase) - 1) < 1e-6
    assert torch.allclose(a, phase * b, atol=1e-6)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_cnot_permutes_basis_states(n: int) -> None:
    states = sim.basis_states(n)
    for c in range(n):
        for t in range(n):
            if c == t:
                continue
            out = sim.apply_gate(states, sim.cnot(), (c, t), n)
            for k in range(2**n):
                bits = [(k >> (n - 1 - i)) & 1 for i in range(n)]
                if bits[c]:
                    bits[t] ^= 1
                j = sum(b << (n - 1 - i) for i, b in enumerate(bits))
                assert out[k, j] == 1 and out[k].abs().sum() == 1


def test_single_qubit_gate_acts_on_the_right_wire() -> None:
    # X on wire w of |0...0> gives the basis index 2**(n-1-w) (wire 0 = most significant bit)
    n = 3
    for w in range(n):
        out = sim.apply_gate(sim.zero_state(n), sim.rx(math.pi), (w,), n)
        assert torch.argmax(sim.probabilities(out)[0]) == 2 ** (n - 1 - w)


def test_apply_gate_rejects_bad_wires() -> None:
    with pytest.raises(ValueError, match="invalid wires"):
        sim.apply_gate(sim.zero_state(2), sim.cnot(), (0, 0), 2)
    with pytest.raises(ValueError, match="unknown gate"):
        sim.gate_matrix("SWAPPY")


def test_kron_product_state_matches_gate_application() -> None:
    gen = torch.Generator().manual_seed(2)
    n, b = 4, 6
    angles = torch.rand(b, n, generator=gen) * math.pi
    state = sim.zero_state(n, b)
    for i in range(n):
        state = sim.apply_gate(state, sim.ry(angles[:, i]), (i,), n)
    qubits = [sim.ry(angles[:, i])[:, :, 0] for i in range(n)]
    assert torch.allclose(sim.kron_product_state(qubits), state, atol=1e-6)


def test_expval_z_on_basis_states_and_normalisation() -> None:
    n = 3
    ez = sim.expval_z(sim.basis_states(n))
    assert torch.equal(ez, sim.z_signs(n))
    gen = torch.Generator().manual_seed(3)
    psi = torch.randn(4, 2**n, dtype=sim.CDTYPE, generator=gen)
    psi = psi / psi.abs().pow(2).sum(1, keepdim=True).sqrt()
    assert torch.allclose(sim.probabilities(psi).sum(1), torch.ones(4), atol=1e-6)
    assert (sim.expval_z(psi).abs() <= 1 + 1e-6).all()


def test_sampled_expval_is_seeded_and_unbiased() -> None:
    gen = torch.Generator().manual_seed(4)
    n = 3
    psi = torch.randn(5, 2**n, dtype=sim.CDTYPE, generator=gen)
    psi = psi / psi.abs().pow(2).sum(1, keepdim=True).sqrt()
    a = sim.sample_expval_z(psi, 4096, torch.Generator().manual_seed(9))
    b = sim.sample_expval_z(psi, 4096, torch.Generator().manual_seed(9))
    assert torch.equal(a, b)
    exact = sim.expval_z(psi)
    # each estimate is a mean of 4096 +-1 values: 6 standard errors is a safe bound
    assert ((a - exact).abs() <= 6 / math.sqrt(4096)).all()
    # a basis state gives exact +-1 samples
    assert torch.equal(sim.sample_expval_z(sim.basis_states(n), 7, gen), sim.z_signs(n))
    with pytest.raises(ValueError, match="shots"):
        sim.sample_expval_z(psi, 0, gen)
