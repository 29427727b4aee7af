"""A small circuit IR: ops whose angles come from inputs, weights, constants or a config.

Design qtrojan.md §9.2. A :class:`Circuit` is an immutable list of :class:`Op`. Each angle is a
:class:`Param` whose source is one of

* ``input``  – feature ``index`` of the sample (data encoding, S(x) in the paper),
* ``weight`` – trainable weight ``index`` (the ansatz W(theta)),
* ``const``  – a fixed number ``value``,
* ``config`` – a number ``value`` read by the compiler from the configuration entry ``key``
  (the QTrojan wrap gates; see :mod:`qtrojan.compiler`).

Builders give the paper's victim (§1): angle encoding ``R_axis(x_i)`` on qubit ``i`` and a
layered ansatz (RY, RZ per qubit, CNOT ring; or U3 per qubit and a CU3 ring).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qtrojan.sim import GATES

PARAM_KINDS = ("input", "weight", "const", "config")
ROTATION_AXES = ("X", "Y", "Z")
ANSATZ_KINDS = ("ryrz", "u3cu3")


@dataclass(frozen=True)
class Param:
    """Source of one gate angle."""

    kind: str
    index: int = 0
    value: float = 0.0
    key: str = ""

    def __post_init__(self) -> None:
        if self.kind not in PARAM_KINDS:
            raise ValueError(f"Param.kind must be one of {PARAM_KINDS}, got {self.kind!r}")
        if self.index < 0:
            raise ValueError(f"Param.index must be >= 0, got {self.index}")


@dataclass(frozen=True)
class Op:
    """One gate application. ``tag`` records its role: encoding, ansatz, calibration, ..."""

    name: str
    wires: tuple[int, ...]
    params: tuple[Param, ...] = ()
    tag: str = ""

    def __post_init__(self) -> None:
        if self.name not in GATES:
            raise ValueError(f"unknown gate {self.name!r}; known: {sorted(GATES)}")
        n_wires, n_par, _ = GATES[self.name]
        if len(self.wires) != n_wires:
            raise ValueError(f"{self.name} acts on {n_wires} wire(s), got {self.wires}")
        if len(set(self.wires)) != len(self.wires):
            raise ValueError(f"{self.name} has repeated wires {self.wires}")
        if len(self.params) != n_par:
            raise ValueError(f"{self.name} takes {n_par} angle(s), got {len(self.params)}")

    @property
    def is_encoding(self) -> bool:
        """True when any angle depends on the input sample."""
        return any(p.kind == "input" for p in self.params)

    @property
    def axis(self) -> str | None:
        """Rotation axis ``X``/``Y``/``Z`` for single-axis rotations, else ``None``."""
        if self.name in ("RX", "RY", "RZ"):
            return self.name[1]
        return None


@dataclass(frozen=True)
class Circuit:
    """An immutable gate list on ``n_qubits`` wires."""

    n_qubits: int
    ops: tuple[Op, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.n_qubits < 1:
            raise ValueError(f"n_qubits must be >= 1, got {self.n_qubits}")
        for op in self.ops:
            if any(not 0 <= w < self.n_qubits for w in op.wires):
                raise ValueError(f"op {op.name} on wires {op.wires} outside 0..{self.n_qubits - 1}")

    def __add__(self, other: Circuit) -> Circuit:
        if other.n_qubits != self.n_qubits:
            raise ValueError("cannot concatenate circuits of different widths")
        return Circuit(self.n_qubits, self.ops + other.ops)

    @property
    def n_inputs(self) -> int:
        """Number of input features the circuit reads (max index + 1)."""
        idx = [p.index for op in self.ops for p in op.params if p.kind == "input"]
        return max(idx) + 1 if idx else 0

    @property
    def n_weights(self) -> int:
        """Number of trainable weights the circuit reads (max index + 1)."""
        idx = [p.index for op in self.ops for p in op.params if p.kind == "weight"]
        return max(idx) + 1 if idx else 0

    def encoding_indices(self) -> list[int]:
        """Positions in :attr:`ops` of the data-encoding gates, in circuit order."""
        return [i for i, op in enumerate(self.ops) if op.is_encoding]

    def gate_count(self) -> int:
        """Total number of gates."""
        return len(self.ops)

    def count_by_name(self) -> dict[str, int]:
        """Gate histogram by gate name."""
        out: dict[str, int] = {}
        for op in self.ops:
            out[op.name] = out.get(op.name, 0) + 1
        return out

    def depth(self) -> int:
        """Circuit depth: length of the longest gate chain with ASAP scheduling per wire."""
        level = [0] * self.n_qubits
        for op in self.ops:
            d = max(level[w] for w in op.wires) + 1
            for w in op.wires:
                level[w] = d
        return max(level) if level else 0


def angle_encoder(n_qubits: int, axes: str = "Y") -> Circuit:
    """Angle encoding S(x): for each axis ``a`` (j-th letter) apply ``R_a(x[j*n + i])`` on qubit i.

    The default ``"Y"`` is the paper's RY encoding (§1); ``"X"`` is PennyLane's
    ``AngleEmbedding`` default; several letters give a multi-axis encoder that reads
    ``n * len(axes)`` features. Applied once (no data re-uploading, limitation L4).
    """
    if not axes or any(a not in ROTATION_AXES for a in axes):
        raise ValueError(f"encoding axes must be a non-empty string over {ROTATION_AXES}, "
                         f"got {axes!r}")
    ops = []
    for j, a in enumerate(axes):
        for i in range(n_qubits):
            ops.append(Op(f"R{a}", (i,), (Param("input", j * n_qubits + i),), tag="encoding"))
    return Circuit(n_qubits, tuple(ops))


def ansatz_weight_count(n_qubits: int, n_layers: int, kind: str = "ryrz") -> int:
    """Number of trainable angles in :func:`layered_ansatz`."""
    if kind == "ryrz":
        return n_layers * n_qubits * 2
    if kind == "u3cu3":
        return n_layers * 3 * (n_qubits + len(_ring(n_qubits)))
    raise ValueError(f"ansatz kind must be one of {ANSATZ_KINDS}, got {kind!r}")


def _ring(n_qubits: int) -> list[tuple[int, int]]:
    if n_qubits == 1:
        return []
    if n_qubits == 2:
        return [(0, 1)]
    return [(i, (i + 1) % n_qubits) for i in range(n_qubits)]


def layered_ansatz(n_qubits: int, n_layers: int, kind: str = "ryrz",
                   weight_offset: int = 0) -> Circuit:
    """Layered ansatz W(theta) (design §1).

    ``ryrz``: per layer, ``RY(theta_{l,i,0}) RZ(theta_{l,i,1})`` on every qubit, then a CNOT ring
    ``0->1, 1->2, ..., n-1->0``. ``u3cu3``: per layer, U3 on every qubit, then a CU3 ring
    (TorchQuantum style).
    """
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}")
    ansatz_weight_count(n_qubits, n_layers, kind)  # validates kind
    ops: list[Op] = []
    k = weight_offset

    def w() -> Param:
        nonlocal k
        k += 1
        return Param("weight", k - 1)

    for _ in range(n_layers):
        if kind == "ryrz":
            for i in range(n_qubits):
                ops.append(Op("RY", (i,), (w(),), tag="ansatz"))
                ops.append(Op("RZ", (i,), (w(),), tag="ansatz"))
            for c, t in _ring(n_qubits):
                ops.append(Op("CNOT", (c, t), tag="ansatz"))
        else:
            for i in range(n_qubits):
                ops.append(Op("U3", (i,), (w(), w(), w()), tag="ansatz"))
            for c, t in _ring(n_qubits):
                ops.append(Op("CU3", (c, t), (w(), w(), w()), tag="ansatz"))
    return Circuit(n_qubits, tuple(ops))


def qnn_circuit(n_qubits: int, n_layers: int, axes: str = "Y", kind: str = "ryrz") -> Circuit:
    """The victim circuit: encoder S(x) followed by the ansatz W(theta)."""
    return angle_encoder(n_qubits, axes) + layered_ansatz(n_qubits, n_layers, kind)
