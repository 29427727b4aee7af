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

import functools
from dataclasses import dataclass

import torch

from qtrojan.circuit import Circuit, Op, Param
from qtrojan.sim import CDTYPE, GATES, apply_gate, basis_states, kron_product_state

METHODS = ("fast", "kron", "gates")


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
        return run_planned(circuit, x, weights)
    if method == "kron":
        return run_fast(circuit, x, weights)
    if method == "gates":
        return run_gates(circuit, x, weights)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


# --- the planned path: few large tensor ops instead of one small op per gate ----------------
#
# Why: at the register sizes of the paper (4-16 qubits) the per-gate paths spend most of their
# time in framework overhead (thousands of tiny ops per forward + backward). The planned path
# compiles a circuit once into a short list of steps, each a handful of tensor ops:
#
# * ``_Local`` – a run of single-qubit gates. Gates are grouped in "rounds" (the r-th gate on
#   each wire); the gates of one round with the same name are built by ONE call of the gate
#   builder on a vector of angles, and multiplied into per-wire 2x2 products. The layer's
#   operator is ``kron(M_0..M_{h-1}) (x) kron(M_h..M_{n-1})`` (h = n // 2), applied to the state
#   viewed as ``(B, 2**h, 2**(n-h))`` by two matmuls: ``U_hi @ psi @ U_lo^T``.
# * ``_Perm`` – a run of CNOT/CZ gates: a fixed permutation of basis indices times a sign
#   vector, computed once with integer arithmetic, applied as one gather.
# * ``_Dense`` – any other multi-qubit gate (CRX, CU3): applied with :func:`apply_gate`.
#
# The leading local run acts on |0...0>, so it is applied to per-wire vectors and the state
# is built by Kronecker products (the product-state prefix).


@dataclass(frozen=True)
class _Slot:
    """Angle ``j`` of a group of same-name gates: where each gate's angle comes from."""

    const: torch.Tensor          # (k,) fixed values (used where no mask is set)
    weight_idx: torch.Tensor     # (k,) long
    weight_mask: torch.Tensor    # (k,) bool
    input_idx: torch.Tensor      # (k,) long
    input_mask: torch.Tensor     # (k,) bool
    source: str                  # "weight" / "input" / "const" when uniform, else "mixed"
    reads_weights: bool
    reads_inputs: bool

    def angles(self, x: torch.Tensor | None, weights: torch.Tensor | None) -> torch.Tensor:
        if self.reads_weights and weights is None:
            raise ValueError("circuit reads weights, but none were given")
        if self.reads_inputs and x is None:
            raise ValueError("circuit reads an input feature but no input was given")
        if self.source == "const":
            return self.const
        if self.source == "weight":
            return weights[self.weight_idx]  # type: ignore[index]
        if self.source == "input":
            return x[:, self.input_idx]  # type: ignore[index]
        a = self.const
        if self.reads_weights:
            a = torch.where(self.weight_mask, weights[self.weight_idx], a)  # type: ignore[index]
        if self.reads_inputs:
            a = torch.where(self.input_mask, x[:, self.input_idx], a)  # type: ignore[index]
        return a


@dataclass(frozen=True)
class _Group:
    name: str
    wires: torch.Tensor          # (k,) long, distinct
    slots: tuple[_Slot, ...]
    all_wires: bool              # wires == 0..n-1 in order (no gather/scatter needed)


@dataclass(frozen=True)
class _Local:
    groups: tuple[_Group, ...]   # in application order
    reads_input: bool


@dataclass(frozen=True)
class _Perm:
    source: torch.Tensor         # new[:, i] = old[:, source[i]] * sign[i]
    inverse: torch.Tensor        # old[:, j] = new[:, inverse[j]] (the backward gather)
    sign: torch.Tensor | None


class _PermuteColumns(torch.autograd.Function):
    """``x[:, source]`` whose backward is the inverse gather, not a scatter-add."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, source: torch.Tensor,  # noqa: ANN001
                inverse: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(inverse)
        return x.index_select(1, source)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # noqa: ANN001
        (inverse,) = ctx.saved_tensors
        return grad.index_select(1, inverse), None, None


@dataclass(frozen=True)
class _Dense:
    op: Op


_PERM_GATES = ("CNOT", "CZ")


def _make_slot(params: list[Param], max_weight: int, max_input: int) -> _Slot:
    def idx(kind: str, limit: int) -> torch.Tensor:
        for p in params:
            if p.kind == kind and p.index >= limit:
                what = "weight" if kind == "weight" else "input feature"
                raise ValueError(f"circuit reads {what} {p.index}, which was not given")
        return torch.tensor([p.index if p.kind == kind else 0 for p in params], dtype=torch.long)

    kinds = {"weight" if p.kind == "weight" else "input" if p.kind == "input" else "const"
             for p in params}
    return _Slot(torch.tensor([p.value if p.kind in ("const", "config") else 0.0
                               for p in params], dtype=torch.float32),
                 idx("weight", max_weight), torch.tensor([p.kind == "weight" for p in params]),
                 idx("input", max_input), torch.tensor([p.kind == "input" for p in params]),
                 next(iter(kinds)) if len(kinds) == 1 else "mixed", "weight" in kinds,
                 "input" in kinds)


def _local_step(ops: list[Op], n_qubits: int, max_weight: int, max_input: int) -> _Local:
    per_wire: dict[int, list[Op]] = {}
    for op in ops:
        per_wire.setdefault(op.wires[0], []).append(op)
    groups = []
    for r in range(max(len(v) for v in per_wire.values())):
        by_name: dict[str, list[Op]] = {}
        for wire_ops in per_wire.values():
            if r < len(wire_ops):
                by_name.setdefault(wire_ops[r].name, []).append(wire_ops[r])
        for name, group in by_name.items():
            slots = tuple(_make_slot([op.params[j] for op in group], max_weight, max_input)
                          for j in range(len(group[0].params)))
            wires = [op.wires[0] for op in group]
            groups.append(_Group(name, torch.tensor(wires), slots,
                                 wires == list(range(n_qubits))))
    return _Local(tuple(groups), any(op.is_encoding for op in ops))


def _perm_step(ops: list[Op], n: int) -> _Perm:
    d = 2**n
    pos = torch.arange(d)
    source = torch.arange(d)
    sign = torch.ones(d)
    for op in ops:
        c, t = (n - 1 - op.wires[0], n - 1 - op.wires[1])  # bit positions
        if op.name == "CNOT":
            f = torch.where((pos >> c) & 1 == 1, pos ^ (1 << t), pos)
            source, sign = source[f], sign[f]
        else:  # CZ
            sign = sign * torch.where(((pos >> c) & 1) & ((pos >> t) & 1) == 1, -1.0, 1.0)
    return _Perm(source, torch.argsort(source),
                 None if bool((sign == 1).all()) else sign.to(CDTYPE))


def plan(circuit: Circuit, n_weights: int, n_inputs: int) -> tuple[object, ...]:
    """The circuit as a tuple of steps (see the section comment); cached per circuit."""
    return _plan_cached(circuit, n_weights, n_inputs)[0]


@dataclass(frozen=True)
class _Batch:
    """All data-free groups of one gate name, built by a single gate-builder call."""

    name: str
    slots: tuple[_Slot, ...]
    keys: tuple[int, ...]        # id() of each group (stable: the plan is cached)
    sizes: tuple[int, ...]


def _concat_slots(slots: list[_Slot]) -> _Slot:
    sources = {s.source for s in slots}
    return _Slot(torch.cat([s.const for s in slots]), torch.cat([s.weight_idx for s in slots]),
                 torch.cat([s.weight_mask for s in slots]),
                 torch.cat([s.input_idx for s in slots]),
                 torch.cat([s.input_mask for s in slots]),
                 next(iter(sources)) if len(sources) == 1 else "mixed",
                 any(s.reads_weights for s in slots), any(s.reads_inputs for s in slots))


def _batches(steps: list[object]) -> tuple[_Batch, ...]:
    by_name: dict[str, list[_Group]] = {}
    for step in steps:
        if isinstance(step, _Local):
            for g in step.groups:
                if all(s.source in ("weight", "const") for s in g.slots):
                    by_name.setdefault(g.name, []).append(g)
    return tuple(_Batch(name, tuple(_concat_slots([g.slots[j] for g in gs])
                                    for j in range(len(gs[0].slots))),
                        tuple(id(g) for g in gs), tuple(int(g.wires.numel()) for g in gs))
                 for name, gs in by_name.items())


def _prebuild(batches: tuple[_Batch, ...], weights: torch.Tensor | None
              ) -> dict[int, torch.Tensor]:
    """Gate matrices of every data-free group, one builder call per gate name."""
    out: dict[int, torch.Tensor] = {}
    for b in batches:
        mats = GATES[b.name][2](*[s.angles(None, weights) for s in b.slots]).to(CDTYPE)
        out.update(zip(b.keys, torch.split(mats, list(b.sizes)), strict=True))
    return out


@functools.lru_cache(maxsize=256)
def _plan_cached(circuit: Circuit, n_weights: int, n_inputs: int
                 ) -> tuple[tuple[object, ...], tuple[_Batch, ...]]:
    steps: list[object] = []
    run: list[Op] = []
    kind = ""
    for op in (*circuit.ops, None):
        k = "end" if op is None else ("local" if len(op.wires) == 1 else
                                      "perm" if op.name in _PERM_GATES else "dense")
        if run and (k != kind or k == "dense"):
            if kind == "local":
                steps.append(_local_step(run, circuit.n_qubits, n_weights, n_inputs))
            elif kind == "perm":
                steps.append(_perm_step(run, circuit.n_qubits))
            else:
                steps.append(_Dense(run[0]))
            run = []
        if op is not None:
            run.append(op)
            kind = k
    return tuple(steps), _batches(steps)


def _group_gate(g: _Group, x: torch.Tensor | None, weights: torch.Tensor | None,
                prebuilt: dict[int, torch.Tensor]) -> torch.Tensor:
    if id(g) in prebuilt:
        return prebuilt[id(g)]
    return GATES[g.name][2](*[s.angles(x, weights) for s in g.slots]).to(CDTYPE)


def _wire_matrices(step: _Local, n: int, x: torch.Tensor | None,
                   weights: torch.Tensor | None, batch: int | None,
                   prebuilt: dict[int, torch.Tensor]) -> torch.Tensor:
    """Per-wire products of the step's gates: ``(n, 2, 2)`` or ``(B, n, 2, 2)``."""
    mats: torch.Tensor | None = None
    for g in step.groups:
        gate = _group_gate(g, x, weights, prebuilt)
        if mats is None and g.all_wires:
            mats = gate
            continue
        if mats is None:
            eye = torch.eye(2, dtype=CDTYPE)
            mats = eye.expand(n, 2, 2) if batch is None else eye.expand(batch, n, 2, 2)
        if g.all_wires:
            mats = gate @ mats
        else:
            mats = mats.index_copy(-3, g.wires, gate @ mats.index_select(-3, g.wires))
    assert mats is not None
    if batch is not None and mats.ndim == 3:
        mats = mats.expand(batch, *mats.shape)
    return mats


def _wire_vectors(step: _Local, n: int, x: torch.Tensor, weights: torch.Tensor | None,
                  prebuilt: dict[int, torch.Tensor]) -> torch.Tensor:
    """Per-wire states ``(B, n, 2)`` after the step's gates act on ``|0>`` (product prefix)."""
    b = x.shape[0]
    vec = torch.zeros(n, 2, 1, dtype=CDTYPE)
    vec[:, 0] = 1
    for g in step.groups:
        gate = _group_gate(g, x, weights, prebuilt)
        if g.all_wires:
            vec = gate @ vec
        else:
            if vec.ndim == 3 and gate.ndim == 4:
                vec = vec.expand(b, n, 2, 1)
            vec = vec.index_copy(-3, g.wires, gate @ vec.index_select(-3, g.wires))
    return vec[..., 0].expand(b, n, 2)


def _kron_all(mats: torch.Tensor) -> torch.Tensor:
    out = mats[0]
    for i in range(1, mats.shape[0]):
        out = torch.kron(out, mats[i])
    return out


#: widest Kronecker factor for registers above 8 qubits: a factor of width w costs
#: B * 2**n * 2**w multiply-adds, so wide factors pay off only while op overhead dominates
MAX_FACTOR_WIDTH = 4


def _chunks(n: int) -> list[tuple[int, int]]:
    """Contiguous wire ranges ``[lo, hi)`` of the Kronecker factors (two halves up to n = 8)."""
    m = 2 if n <= 8 else -(-n // MAX_FACTOR_WIDTH)
    m = max(1, min(m, n))
    bounds = [round(i * n / m) for i in range(m + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(m) if bounds[i] < bounds[i + 1]]


def _apply_local(psi: torch.Tensor, mats: torch.Tensor, n: int) -> torch.Tensor:
    """``(M_0 (x) ... (x) M_{n-1}) psi`` for shared per-wire matrices ``(n, 2, 2)``.

    Each chunk of wires ``[lo, hi)`` is one Kronecker factor ``U``; the state viewed as
    ``(B * 2**lo, 2**(hi-lo), 2**(n-hi))`` is multiplied by ``U`` from the left.
    """
    b = psi.shape[0]
    out = psi
    for lo, hi in _chunks(n):
        u = _kron_all(mats[lo:hi])
        if hi == n:  # last factor: one (B * 2**lo, 2**w) @ U^T matmul
            out = torch.matmul(out.reshape(b * 2**lo, 2 ** (hi - lo)), u.transpose(0, 1))
        else:
            out = torch.matmul(u, out.reshape(b * 2**lo, 2 ** (hi - lo), 2 ** (n - hi)))
    return out.reshape(b, 2**n)


def _product_state(vectors: torch.Tensor) -> torch.Tensor:
    """Kronecker product of per-wire vectors ``(B, n, 2)`` -> ``(B, 2**n)``."""
    return kron_product_state([vectors[:, i] for i in range(vectors.shape[1])])


def run_planned(circuit: Circuit, x: torch.Tensor, weights: torch.Tensor | None
                ) -> torch.Tensor:
    """The planned path (see the section comment); the default ``fast`` method."""
    _check_inputs(circuit, x)
    n, b = circuit.n_qubits, x.shape[0]
    steps, batches = _plan_cached(circuit, 0 if weights is None else int(weights.shape[0]),
                                  int(x.shape[1]))
    prebuilt = _prebuild(batches, weights)
    start = 0
    if steps and isinstance(steps[0], _Local):
        state = _product_state(_wire_vectors(steps[0], n, x, weights, prebuilt))
        start = 1
    else:
        state = torch.zeros(b, 2**n, dtype=CDTYPE)
        state[:, 0] = 1
    for step in steps[start:]:
        if isinstance(step, _Perm):
            state = _PermuteColumns.apply(state, step.source, step.inverse)
            if step.sign is not None:
                state = state * step.sign
        elif isinstance(step, _Dense):
            state = apply_gate(state, op_matrix(step.op, x, weights), step.op.wires, n)
        elif isinstance(step, _Local) and step.reads_input:  # data re-uploading
            mats = _wire_matrices(step, n, x, weights, b, prebuilt)
            for w in range(n):
                state = apply_gate(state, mats[:, w], (w,), n)
        else:
            assert isinstance(step, _Local)
            state = _apply_local(state, _wire_matrices(step, n, x, weights, None, prebuilt), n)
    return state
