"""The compiler pass that reads a configuration file and inserts the QTrojan wrap gates.

Design qtrojan.md §2.1–§2.3 and §9.2; paper §3.2–§3.3. The attacker controls a configuration
artefact read at compile time (it looks like a calibration setting). For every data-encoding
rotation ``R_A(x)`` the pass inserts a pre gate ``R_W(a_k)`` immediately before and a post gate
``R_W(b_k)`` immediately after it, where the wrap axis ``W`` is matched to the encoding axis
``A`` (:data:`WRAP_AXIS`): an RY encoding is wrapped with RX gates and an RX encoding with RY
gates. A Z-axis encoding acting on a Z basis state is already a phase, so it gets no pre gate,
only a post gate (used to pick the basis state). An optional ``tail`` adds ``RY(phi_i) RZ(l_i)``
after the encoder on every qubit (the continuous "QTrojan-opt" target state, §2.4).

With ``enabled = false`` every inserted angle is 0, so each wrap gate is exactly the identity
and the circuit computes the victim's function bit for bit; with ``omit_when_disabled = true``
the pass inserts nothing at all. Switching the backdoor on or off is an edit of the file only.

File format (JSON)::

    {"calibration": {"enabled": true, "omit_when_disabled": false,
                     "pre": [a_0, ...], "post": [b_0, ...], "tail": [[phi_0, l_0], ...] | null}}

``pre`` and ``post`` have one entry per encoding gate, in circuit order.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qtrojan.circuit import Circuit, Op, Param

#: encoding rotation axis -> axis of the inserted wrap gates (design §2.3 table)
WRAP_AXIS: dict[str, str] = {"Y": "X", "X": "Y", "Z": "X"}
#: whether an encoding on that axis needs a pre gate (Z on a Z basis state is a phase)
NEEDS_PRE: dict[str, bool] = {"Y": True, "X": True, "Z": False}

CONFIG_SECTION = "calibration"
_FIELDS = ("enabled", "omit_when_disabled", "pre", "post", "tail")


def _float_list(value: Any, name: str) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"config field '{name}' must be a list of numbers, got "
                         f"{type(value).__name__}")
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"config field '{name}[{i}]' must be a finite number, got {v!r}")
        out.append(float(v))
    return tuple(out)


@dataclass(frozen=True)
class WrapConfig:
    """The configuration entry the compiler reads (see module docstring for the JSON form)."""

    enabled: bool = False
    omit_when_disabled: bool = False
    pre: tuple[float, ...] = ()
    post: tuple[float, ...] = ()
    tail: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self) -> None:
        for name in ("enabled", "omit_when_disabled"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"config field '{name}' must be true or false, got "
                                 f"{getattr(self, name)!r}")
        object.__setattr__(self, "pre", _float_list(self.pre, "pre"))
        object.__setattr__(self, "post", _float_list(self.post, "post"))
        if len(self.pre) != len(self.post):
            raise ValueError(f"config fields 'pre' and 'post' must have the same length, got "
                             f"{len(self.pre)} and {len(self.post)}")
        if self.tail is not None:
            if not isinstance(self.tail, (list, tuple)):
                raise ValueError("config field 'tail' must be a list of [phi, lambda] pairs")
            pairs = []
            for i, pair in enumerate(self.tail):
                vals = _float_list(pair, f"tail[{i}]")
                if len(vals) != 2:
                    raise ValueError(f"config field 'tail[{i}]' must be [phi, lambda]")
                pairs.append((vals[0], vals[1]))
            object.__setattr__(self, "tail", tuple(pairs))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WrapConfig:
        """Parse ``{"calibration": {...}}`` (or the inner mapping), naming bad fields."""
        if not isinstance(data, dict):
            raise ValueError("config must be a JSON object")
        section = data.get(CONFIG_SECTION, data)
        if not isinstance(section, dict):
            raise ValueError(f"config field '{CONFIG_SECTION}' must be an object")
        unknown = sorted(set(section) - set(_FIELDS))
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; allowed: {list(_FIELDS)}")
        return cls(**section)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form ``{"calibration": {...}}``."""
        return {CONFIG_SECTION: {
            "enabled": self.enabled,
            "omit_when_disabled": self.omit_when_disabled,
            "pre": list(self.pre),
            "post": list(self.post),
            "tail": None if self.tail is None else [list(p) for p in self.tail],
        }}

    def to_json(self) -> str:
        """Serialised JSON text."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> WrapConfig:
        """Parse JSON text."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"config is not valid JSON: {e}") from e
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        """Write the config file."""
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> WrapConfig:
        """Read a config file."""
        return cls.from_json(Path(path).read_text())


@dataclass(frozen=True)
class CompileReport:
    """Gate-count and depth overhead of the pass (design §4, limitation L3)."""

    gates_before: int
    gates_after: int
    depth_before: int
    depth_after: int
    inserted: int

    @property
    def gate_overhead(self) -> int:
        return self.gates_after - self.gates_before

    @property
    def depth_overhead(self) -> int:
        return self.depth_after - self.depth_before


def compile_circuit(circuit: Circuit, config: WrapConfig) -> tuple[Circuit, CompileReport]:
    """Insert the encoding-axis-matched wrap gates described by ``config``.

    Returns the compiled circuit and its :class:`CompileReport`. Raises ``ValueError`` if the
    config's ``pre``/``post`` lengths do not match the circuit's encoding gates, if ``tail`` does
    not have one pair per qubit, or if an encoding gate is not a single-axis rotation.
    """
    enc = circuit.encoding_indices()
    active = config.enabled or not config.omit_when_disabled
    if not active:
        return circuit, CompileReport(circuit.gate_count(), circuit.gate_count(),
                                      circuit.depth(), circuit.depth(), 0)
    if len(config.pre) != len(enc):
        raise ValueError(f"config fields 'pre'/'post' need one angle per encoding gate "
                         f"({len(enc)}), got {len(config.pre)}")
    if config.tail is not None and len(config.tail) != circuit.n_qubits:
        raise ValueError(f"config field 'tail' needs one [phi, lambda] pair per qubit "
                         f"({circuit.n_qubits}), got {len(config.tail)}")

    def angle(value: float, key: str) -> Param:
        return Param("config", value=value if config.enabled else 0.0, key=key)

    ops: list[Op] = []
    inserted = 0
    k = 0
    last_enc = enc[-1] if enc else -1
    for pos, op in enumerate(circuit.ops):
        if not op.is_encoding:
            ops.append(op)
        else:
            axis = op.axis
            if axis is None:
                raise ValueError(f"cannot wrap encoding gate {op.name}: only single-axis "
                                 f"rotations RX/RY/RZ are supported (limitation L2)")
            gate = f"R{WRAP_AXIS[axis]}"
            if NEEDS_PRE[axis]:
                ops.append(Op(gate, op.wires, (angle(config.pre[k], f"pre[{k}]"),),
                              tag="calibration"))
                inserted += 1
            ops.append(op)
            ops.append(Op(gate, op.wires, (angle(config.post[k], f"post[{k}]"),),
                          tag="calibration"))
            inserted += 1
            k += 1
        if pos == last_enc and config.tail is not None:
            for q, (phi, lam) in enumerate(config.tail):
                ops.append(Op("RY", (q,), (angle(phi, f"tail[{q}][0]"),), tag="calibration"))
                ops.append(Op("RZ", (q,), (angle(lam, f"tail[{q}][1]"),), tag="calibration"))
                inserted += 2
    out = Circuit(circuit.n_qubits, tuple(ops))
    return out, CompileReport(circuit.gate_count(), out.gate_count(), circuit.depth(),
                              out.depth(), inserted)
