"""The operator-Schmidt split gives every basis state's <Z> exactly as the unitary does."""

from __future__ import annotations

import pytest
import torch

import qtrojan.bipartite as bp
from qtrojan.circuit import angle_encoder, layered_ansatz
from qtrojan.executor import unitary_rows
from qtrojan.sim import expval_z


def _ansatz_and_weights(n: int, layers: int, kind: str, seed: int):
    ops = layered_ansatz(n, layers, kind).ops
    gen = torch.Generator().manual_seed(seed)
    n_w = max(p.index for op in ops for p in op.params if p.kind == "weight") + 1
    return ops, torch.rand(n_w, generator=gen) * 6.3


@pytest.mark.parametrize(("n", "layers", "kind"), [
    (2, 2, "ryrz"), (3, 1, "ryrz"), (4, 3, "ryrz"), (5, 2, "u3cu3"), (6, 2, "ryrz"),
    (7, 3, "ryrz"), (8, 2, "u3cu3"), (10, 2, "ryrz"),
])
def test_basis_expvals_equal_the_unitary_rows(n: int, layers: int, kind: str) -> None:
    ops, w = _ansatz_and_weights(n, layers, kind, seed=n + layers)
    ref = expval_z(unitary_rows(ops, n, w), list(range(n)))
    got = bp.basis_expvals(ops, n, w, list(range(n)))
    assert got.shape == (2**n, n)
    assert torch.allclose(got, ref, atol=2e-6)


@pytest.mark.parametrize("cut", [1, 2, 4])
def test_any_cut_gives_the_same_expvals(cut: int) -> None:
    ops, w = _ansatz_and_weights(5, 2, "ryrz", seed=3)
    ref = expval_z(unitary_rows(ops, 5, w), [0, 3, 4])
    assert torch.allclose(bp.basis_expvals(ops, 5, w, [0, 3, 4], cut=cut), ref, atol=2e-6)


def test_a_ring_crosses_a_contiguous_cut_twice_per_layer() -> None:
    ops = layered_ansatz(16, 4).ops
    assert bp.crossings(ops, 8) == 8
    assert bp.crossings(ops, 1) == 8
    assert bp.crossings(layered_ansatz(2, 3).ops, 1) == 3  # two wires: one CNOT per layer
    # 16 qubits, 4 layers: R = 2^8 branches, R^2 * 2^8 = 2^24 Gram entries, within the limit
    assert bp.feasible(ops, 16)
    assert not bp.feasible(layered_ansatz(16, 5).ops, 16)  # R^2 * 2^8 = 2^28


def test_branch_states_rebuild_the_unitary() -> None:
    ops, w = _ansatz_and_weights(4, 2, "u3cu3", seed=1)
    a, b = bp.branch_states(ops, 4, w, cut=2)
    assert a.shape[0] == b.shape[0] == 2 ** bp.crossings(ops, 2)
    # U|a>|b> = sum_beta A_beta|a> (x) B_beta|b>
    rows = torch.einsum("rai,rbj->abij", a, b).reshape(16, 16)
    assert torch.allclose(rows, unitary_rows(ops, 4, w), atol=1e-6)


def test_bad_inputs_are_refused() -> None:
    ops, w = _ansatz_and_weights(3, 1, "ryrz", seed=0)
    with pytest.raises(ValueError, match="data-independent"):
        bp.branch_states(angle_encoder(3).ops, 3, None, 1)
    with pytest.raises(ValueError, match="cut"):
        bp.branch_states(ops, 3, w, 3)
    with pytest.raises(ValueError, match="wires"):
        bp.basis_expvals(ops, 3, w, [3])
