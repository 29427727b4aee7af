"""Executing a :class:`~qtrojan.circuit.Circuit` on a batch of inputs.

Two paths (design qtrojan.md §7 and §9.1):

* ``gates`` – the reference: every op is applied to the batched state one by one.
* ``fast``  – the leading run of single-qubit ops (the encoder S(x), any QTrojan wrap gates and
  the ansatz's first rotation layer) acts on ``|0...0>`` as a product state, so each qubit's
  2x2 gates are multiplied together and the state is one Kronecker product. The remaining,
  data-independent ops are turned into the ``2**n x 2**n`` unitary once per call (when the batch
  is at least ``2**n``) and applied with one matmul; otherwise they are applied to the batch with
  consecutive single-qubit gates merged per wire. Ops after the prefix that read the input
  (data re-uploading) always go the direct way.

Both paths give the same state up to float rounding (tested).
"""

from __future__ import annotations

import torch

from qtrojan.circuit import Circuit, Op, Param
from qtrojan.sim import CDTYPE, GATES, apply_gate, basis_states, kron_product_state

METHODS = ("fast", "gates")


def resolve_angle(param: Param, x: torch.Tensor | None, weights: torch.Tensor | None
                  ) -> torch.Tensor:
    """Angle value: shape ``(B,)`` for inputs, a scalar tensor otherwise."""
    if param.kind == "input":
        if x is None:
            raise ValueError("circuit reads an input feature but no input was given")
        if param.index >= x.shape[1]:
            raise ValueError(f"circuit reads input feature {param.index}, but x has "
                             f"{x.shape[1]} features")
        return x[:, param.index]
    if param.kind == "weight":
        if weights is None or param.index >= weights.shape[0]:
            raise ValueError(f"circuit reads weight {param.index}, which was not given")
        return weights[param.index]
    dtype = weights.dtype if weights is not None else torch.float32
    return torch.tensor(param.value, dtype=dtype)


def op_matrix(op: Op, x: torch.Tensor | None, weights: torch.Tensor | None) -> torch.Tensor:
    """Gate matrix of ``op``: ``(d, d)`` if data-independent, ``(B, d, d)`` if it reads ``x``."""
    _, _, fn = GATES[op.name]
    angles = [resolve_angle(p, x, weights) for p in op.params]
    return fn(*angles).to(CDTYPE)


def _check_inputs(circuit: Circuit, x: torch.Tensor) -> None:
    if x.ndim != 2:
        raise ValueError(f"inputs must have shape (batch, features), got {tuple(x.shape)}")
    if x.shape[1] < circuit.n_inputs:
        raise ValueError(f"circuit reads {circuit.n_inputs} input features, x has {x.shape[1]}")


def run_gates(circuit: Circuit, x: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Reference path: apply each op in turn to ``|0...0>``; returns ``(B, 2**n)``."""
    _check_inputs(circuit, x)
    n = circuit.n_qubits
    state = torch.zeros(x.shape[0], 2**n, dtype=CDTYPE)
    state[:, 0] = 1
    for op in circuit.ops:
        state = apply_gate(state, op_matrix(op, x, weights), op.wires, n)
    return state


def _apply_merged(state: torch.Tensor, ops: list[Op] | tuple[Op, ...], x: torch.Tensor | None,
                  weights: torch.Tensor | None, n: int) -> torch.Tensor:
    """Apply ``ops``, multiplying consecutive single-qubit gates on a wire before applying."""
    pending: dict[int, torch.Tensor] = {}

    def flush(wires: tuple[int, ...] | list[int]) -> None:
        nonlocal state
        for w in wires:
            if w in pending:
                state = apply_gate(state, pending.pop(w), (w,), n)

    for op in ops:
        m = op_matrix(op, x, weights)
        if len(op.wires) == 1:
            w = op.wires[0]
            pending[w] = m @ pending[w] if w in pending else m
        else:
            flush(op.wires)
            state = apply_gate(state, m, op.wires, n)
    flush(sorted(pending))
    return state


def split_prefix(circuit: Circuit) -> tuple[tuple[Op, ...], tuple[Op, ...]]:
    """Split into the leading run of single-qubit ops (a product-state block) and the rest."""
    k = 0
    while k < len(circuit.ops) and len(circuit.ops[k].wires) == 1:
        k += 1
    return circuit.ops[:k], circuit.ops[k:]


def product_prefix_state(ops: tuple[Op, ...] | list[Op], n: int, x: torch.Tensor,
                         weights: torch.Tensor | None) -> torch.Tensor:
    """State after single-qubit ``ops`` on ``|0...0>``, built as a Kronecker product."""
    b = x.shape[0]
    per_wire: dict[int, torch.Tensor] = {}
    for op in ops:
        if len(op.wires) != 1:
            raise ValueError("product_prefix_state takes single-qubit ops only")
        w = op.wires[0]
        m = op_matrix(op, x, weights)
        per_wire[w] = m @ per_wire[w] if w in per_wire else m
    qubits = []
    zero = torch.tensor([1, 0], dtype=CDTYPE).expand(b, 2)
    for w in range(n):
        if w in per_wire:
            qubits.append(per_wire[w][..., :, 0].expand(b, 2))
        else:
            qubits.append(zero)
    return kron_product_state(qubits)


def unitary_rows(ops: tuple[Op, ...] | list[Op], n: int, weights: torch.Tensor | None
                 ) -> torch.Tensor:
    """Matrix ``T`` with row ``j`` equal to ``U|j>`` for the data-independent ``ops``.

    A batched state ``psi`` (rows) is mapped to ``U psi`` by ``psi @ T``.
    """
    if any(op.is_encoding for op in ops):
        raise ValueError("unitary_rows needs data-independent ops (no input angles)")
    return _apply_merged(basis_states(n), ops, None, weights, n)


def run_fast(circuit: Circuit, x: torch.Tensor, weights: torch.Tensor | None,
             use_unitary: bool | None = None) -> torch.Tensor:
    """Fast path (see module docstring). ``use_unitary=None`` picks by batch size."""
    _check_inputs(circuit, x)
    n = circuit.n_qubits
    prefix, suffix = split_prefix(circuit)
    state = product_prefix_state(prefix, n, x, weights)
    if not suffix:
        return state
    data_free = not any(op.is_encoding for op in suffix)
    if use_unitary is None:
        use_unitary = x.shape[0] >= 2**n
    if data_free and use_unitary:
        return state @ unitary_rows(suffix, n, weights)
    return _apply_merged(state, suffix, x, weights, n)


def execute(circuit: Circuit, x: torch.Tensor, weights: torch.Tensor | None,
            method: str = "fast") -> torch.Tensor:
    """Final state of ``circuit`` for each row of ``x`` (``method`` in :data:`METHODS`)."""
    if method == "fast":
        return run_fast(circuit, x, weights)
    if method == "gates":
        return run_gates(circuit, x, weights)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")
