"""Circuits that leave the package: OpenQASM 3 text and a standalone PennyLane script.

Why: a researcher who wants to run the clean or the trojaned victim elsewhere (another
simulator, a hardware queue, a circuit-level detector) needs the gates, not our IR. Both
writers bind the trained weights and the compiler's config angles as literals, and keep the
data-encoding angles as *inputs* (``input float[64] x_i;`` in OpenQASM 3, the argument ``x`` in
the PennyLane script), so one file serves every sample.

Gate mapping (OpenQASM 3 ``stdgates.inc`` names): RX/RY/RZ -> ``rx``/``ry``/``rz``, U3 -> ``u3``,
CNOT -> ``cx``, CZ -> ``cz``, CRX -> ``crx``, CU3 -> ``cu(theta, phi, lambda, 0)`` (the
standard controlled-U with zero phase is exactly our CU3). Wire ``i`` is qubit ``q[i]``.
"""

from __future__ import annotations

import re

from qtrojan.circuit import Circuit, Op, Param

#: IR gate name -> (OpenQASM 3 name, extra trailing arguments)
QASM_GATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "RX": ("rx", ()), "RY": ("ry", ()), "RZ": ("rz", ()), "U3": ("u3", ()),
    "CNOT": ("cx", ()), "CZ": ("cz", ()), "CRX": ("crx", ()), "CU3": ("cu", ("0.0",)),
}
#: IR gate name -> PennyLane operation name
PENNYLANE_GATES: dict[str, str] = {
    "RX": "RX", "RY": "RY", "RZ": "RZ", "U3": "U3", "CNOT": "CNOT", "CZ": "CZ", "CRX": "CRX",
}
_INCLUDE = 'include "stdgates.inc";'


def _literal(value: float) -> str:
    # repr of a Python float round-trips exactly (the weights are float32 values, widened)
    return repr(float(value))


def _angle_text(p: Param, weights: list[float], input_fmt: str) -> str:
    if p.kind == "input":
        return input_fmt.format(p.index)
    if p.kind == "weight":
        if p.index >= len(weights):
            raise ValueError(f"circuit reads weight {p.index}, only {len(weights)} given")
        return _literal(weights[p.index])
    return _literal(p.value)


def to_qasm3(circuit: Circuit, weights: list[float], comment: str = "") -> str:
    """OpenQASM 3 program of ``circuit`` with weights and config angles bound.

    Each input feature ``i`` becomes ``input float[64] x_i;``. Lines for gates the compiler
    inserted carry the trailing comment ``// calibration`` so a human can find them; a
    detector must not rely on comments (see :mod:`qtrojan.detect`).
    """
    lines = ["OPENQASM 3.0;", _INCLUDE]
    if comment:
        lines.insert(1, "// " + comment.replace("\n", " "))
    lines += [f"input float[64] x_{i};" for i in range(circuit.n_inputs)]
    lines.append(f"qubit[{circuit.n_qubits}] q;")
    for op in circuit.ops:
        name, extra = QASM_GATES[op.name]
        args = [_angle_text(p, weights, "x_{}") for p in op.params] + list(extra)
        head = f"{name}({', '.join(args)})" if args else name
        tail = "  // calibration" if op.tag == "calibration" else ""
        lines.append(f"{head} {', '.join(f'q[{w}]' for w in op.wires)};{tail}")
    return "\n".join(lines) + "\n"


def qasm3_for_pennylane(text: str) -> str:
    """The program without its ``include`` line.

    PennyLane 0.45's OpenQASM 3 interpreter (``qml.from_qasm3``) knows the standard gates
    without the include and raises ``NotImplementedError`` on the statement itself.
    """
    return "\n".join(line for line in text.splitlines() if line.strip() != _INCLUDE) + "\n"


def qasm3_wires(text: str) -> list[str]:
    """PennyLane's wire labels ``["q[0]", ..., "q[n-1]"]`` for the register ``qubit[n] q;``.

    ``qml.from_qasm3`` names register qubits this way; a device created with these wires, in
    this order, has our basis ordering (wire 0 most significant).
    """
    m = re.search(r"^qubit\[(\d+)\]\s+q;", text, flags=re.MULTILINE)
    if m is None:
        raise ValueError("program declares no register 'qubit[n] q;'")
    return [f"q[{i}]" for i in range(int(m.group(1)))]


def qasm3_inputs(text: str) -> list[str]:
    """Names of the ``input`` variables declared in an OpenQASM 3 program, in order."""
    return re.findall(r"^input\s+float\[64\]\s+(\w+);", text, flags=re.MULTILINE)


def _pl_line(op: Op, weights: list[float]) -> str:
    args = [_angle_text(p, weights, "x[{}]") for p in op.params]
    if op.name == "CU3":  # PennyLane has no CU3 class: a controlled U3
        c, t = op.wires
        return f"    qml.ctrl(qml.U3({', '.join(args)}, wires={t}), control={c})"
    wires = list(op.wires)
    return f"    qml.{PENNYLANE_GATES[op.name]}({', '.join([*args, f'wires={wires}'])})"


def to_pennylane_script(circuit: Circuit, weights: list[float], n_readout: int,
                        comment: str = "") -> str:
    """A Python module defining ``apply(x)`` (the gates) and ``qnode(x)`` (the ``<Z_c>``).

    The module imports only PennyLane; ``N_QUBITS`` and ``N_READOUT`` are module constants.
    """
    lines = [f'"""{comment or "Circuit exported by qtrojan."}"""', "",
             "import pennylane as qml", "",
             f"N_QUBITS = {circuit.n_qubits}", f"N_READOUT = {n_readout}",
             f"N_INPUTS = {circuit.n_inputs}", "", "",
             "def apply(x):",
             '    """Apply the gates; ``x`` holds the encoding angles (one per input)."""']
    lines += [_pl_line(op, weights) + ("  # calibration" if op.tag == "calibration" else "")
              for op in circuit.ops] or ["    pass"]
    lines += ["", "",
              'device = qml.device("default.qubit", wires=N_QUBITS)', "", "",
              "@qml.qnode(device)",
              "def qnode(x):",
              '    """Expectation values <Z_c> of the readout qubits (logits / tau)."""',
              "    apply(x)",
              "    return [qml.expval(qml.PauliZ(c)) for c in range(N_READOUT)]", ""]
    return "\n".join(lines)
