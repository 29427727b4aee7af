"""``<Z_c>`` of ``U|s>`` for EVERY basis state ``s`` at once, without the 2^n x 2^n unitary.

Why: QTrojan's basis search (design qtrojan.md §2.4) needs the target margin of ``W(theta)|s>``
for all ``2**n`` basis states. Running them through a simulator costs ``4**n`` amplitude updates
per gate layer (minutes to hours at 16 qubits); the unitary does not fit in memory there.

How (an operator-Schmidt split of the circuit across one cut): the wires are split into
``A = [0, h)`` and ``B = [h, n)``. A two-qubit gate across the cut is controlled, so it is the
sum of two product terms, ``|0><0|_c (x) I_t + |1><1|_c (x) U_t``. Expanding every crossing gate
writes the circuit as ``U = sum_beta A_beta (x) B_beta`` with ``R = 2**(crossings)`` branches
(4**L for L layers of a ring ansatz, whose ring crosses any contiguous cut twice). Each half is
simulated on all of its own basis states with the branch as an extra batch dimension, which
costs ``R * 4**h`` instead of ``4**n``. For ``|s> = |a>|b>``,

    <Z_c>(a, b) = sum_{beta, beta'} <A_beta a| Z_c |A_beta' a> <B_beta b | B_beta' b>

(``Z_c`` on the side that holds wire ``c``, the identity on the other), one matrix product of
``(2**h, R*R)`` by ``(R*R, 2**(n-h))``. The result is exact (equal to the simulator's up to float
rounding, tested against the unitary); it pays off while ``R*R`` is below about ``2**n``: at 16
qubits a 4-layer ring ansatz has R = 256 and needs a few GFLOP instead of about a TFLOP.
"""

from __future__ import annotations

import torch

from qtrojan.circuit import Op
from qtrojan.executor import op_matrix
from qtrojan.sim import CDTYPE, apply_gate, z_signs

#: the largest ``R*R * 2**max(h, n-h)`` (complex entries of one branch-Gram tensor) computed
#: here; above it :func:`feasible` is False and callers fall back to plain simulation
MAX_GRAM_ENTRIES = 2**25

_P0 = torch.tensor([[1, 0], [0, 0]], dtype=CDTYPE)
_P1 = torch.tensor([[0, 0], [0, 1]], dtype=CDTYPE)


def crossings(ops: tuple[Op, ...] | list[Op], cut: int) -> int:
    """Number of two-qubit gates with one wire below ``cut`` and one at or above it."""
    return sum(1 for op in ops if len(op.wires) == 2
               and (op.wires[0] < cut) != (op.wires[1] < cut))


def default_cut(n_qubits: int) -> int:
    """The balanced cut ``n // 2`` (both halves' basis sets are as small as possible)."""
    return n_qubits // 2


def feasible(ops: tuple[Op, ...] | list[Op], n_qubits: int, cut: int | None = None) -> bool:
    """True when :func:`basis_expvals` fits :data:`MAX_GRAM_ENTRIES` for this circuit."""
    h = default_cut(n_qubits) if cut is None else cut
    if not 0 < h < n_qubits or any(len(op.wires) > 2 for op in ops):
        return False
    r = 2 ** crossings(ops, h)
    return r * r * 2 ** max(h, n_qubits - h) <= MAX_GRAM_ENTRIES


def _split_controlled(op: Op, m: torch.Tensor) -> torch.Tensor:
    """The target block ``U`` of a controlled gate ``|0><0| (x) I + |1><1| (x) U``."""
    eye = torch.eye(2, dtype=m.dtype)
    if not (torch.allclose(m[:2, :2], eye, atol=1e-7) and torch.count_nonzero(m[:2, 2:]) == 0
            and torch.count_nonzero(m[2:, :2]) == 0):
        raise ValueError(f"gate {op.name} on {op.wires} crosses the cut but is not a "
                         f"controlled gate (|0><0| (x) I + |1><1| (x) U)")
    return m[2:, 2:]


def branch_states(ops: tuple[Op, ...] | list[Op], n_qubits: int, weights: torch.Tensor | None,
                  cut: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A, B)``: ``A[beta, a] = A_beta|a>`` of shape ``(R, 2**cut, 2**cut)``, ``B`` likewise
    ``(R, 2**(n-cut), 2**(n-cut))``, with ``U|a>|b> = sum_beta A[beta, a] (x) B[beta, b]``."""
    if any(op.is_encoding for op in ops):
        raise ValueError("branch_states needs data-independent ops (no input angles)")
    if not 0 < cut < n_qubits:
        raise ValueError(f"cut must be in [1, {n_qubits - 1}], got {cut}")
    na, nb = cut, n_qubits - cut
    side = {"A": torch.eye(2**na, dtype=CDTYPE), "B": torch.eye(2**nb, dtype=CDTYPE)}
    width = {"A": na, "B": nb}

    def local(w: int) -> tuple[str, int]:
        return ("A", w) if w < cut else ("B", w - cut)

    for op in ops:
        if len(op.wires) > 2:
            raise ValueError(f"gate {op.name} acts on {len(op.wires)} wires; only 1 and 2 "
                             f"are split")
        m = op_matrix(op, None, weights).to(CDTYPE)
        places = [local(w) for w in op.wires]
        if len({s for s, _ in places}) == 1:
            s = places[0][0]
            side[s] = apply_gate(side[s], m, [w for _, w in places], width[s])
            continue
        u = _split_controlled(op, m)
        (cs, cw), (ts, tw) = places
        side[cs] = torch.cat([apply_gate(side[cs], _P0, [cw], width[cs]),
                              apply_gate(side[cs], _P1, [cw], width[cs])])
        side[ts] = torch.cat([side[ts], apply_gate(side[ts], u, [tw], width[ts])])
    r = side["A"].shape[0] // 2**na
    return side["A"].reshape(r, 2**na, 2**na), side["B"].reshape(r, 2**nb, 2**nb)


def _gram(states: torch.Tensor, signs: torch.Tensor | None) -> torch.Tensor:
    """``G[x, beta, beta'] = <S_beta x| D |S_beta' x>`` flattened to ``(2**m, R*R)``."""
    per_input = states.transpose(0, 1)  # (2**m inputs, R, 2**m amplitudes)
    right = per_input if signs is None else per_input * signs.to(per_input.dtype)
    g = torch.matmul(per_input.conj(), right.transpose(-1, -2))
    return g.reshape(g.shape[0], -1)


def basis_expvals(ops: tuple[Op, ...] | list[Op], n_qubits: int, weights: torch.Tensor | None,
                  wires: list[int], cut: int | None = None) -> torch.Tensor:
    """Exact ``<Z_w>`` of ``U|s>`` for every basis state ``s`` (rows, wire 0 = most significant
    bit) and every ``w`` in ``wires``: shape ``(2**n, len(wires))``, as ``expval_z`` of the
    unitary's rows would give."""
    h = default_cut(n_qubits) if cut is None else cut
    if any(not 0 <= w < n_qubits for w in wires):
        raise ValueError(f"wires {wires} outside 0..{n_qubits - 1}")
    with torch.no_grad():
        sa, sb = branch_states(ops, n_qubits, weights, h)
        na, nb = h, n_qubits - h
        plain: dict[str, torch.Tensor] = {}  # the identity-side Gram, built once

        def identity_gram(s: str) -> torch.Tensor:
            if s not in plain:
                plain[s] = _gram(sa if s == "A" else sb, None)
            return plain[s]

        out = []
        for w in wires:
            if w < h:
                ga, gb = _gram(sa, z_signs(na)[:, w]), identity_gram("B")
            else:
                ga, gb = identity_gram("A"), _gram(sb, z_signs(nb)[:, w - h])
            out.append((ga @ gb.transpose(0, 1)).real.reshape(-1))
        return torch.stack(out, dim=1)
