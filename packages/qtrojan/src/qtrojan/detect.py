"""Detectors and a defence pass for circuit backdoors, and the ROC arithmetic to score them.

Why: QDoor (arXiv 2307.09529) argues QTrojan-style backdoors are "easy to detect"; these are
the checks a defender can actually run, so the claim can be measured rather than repeated.

* :func:`gate_audit` – a white-box diff of the circuit the compiler produced against the
  user's source circuit. Score: gates added, removed or changed. Needs the compiled circuit
  (e.g. the job's transpiled circuit from the provider).
* :func:`strip_identities` – an optimisation pass that drops rotations whose fixed angle is a
  multiple of 2π (the identity up to a global phase). It removes a dormant QTrojan's ``RX(0)``
  gates; it cannot remove an active one, whose angles are ±π/2.
* :func:`output_spread` – a black-box probe: the spread (standard deviation across probe
  inputs) of the readout ``<Z_c>``. An active QTrojan makes the output input-independent, so the
  spread collapses to 0 (shot noise only, with finite shots).
* :func:`roc` – false/true positive rates over all thresholds and the area under the curve
  (Mann–Whitney form: ties count one half).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from qtrojan.circuit import Circuit, Op
from qtrojan.qnn import QNN
from qtrojan.sim import sample_expval_z

#: tolerance for "the angle is a multiple of 2π" in :func:`strip_identities`
IDENTITY_ATOL = 1e-9


def _signature(op: Op) -> tuple[object, ...]:
    params = tuple((p.kind, p.index) if p.kind in ("input", "weight") else
                   ("fixed", round(p.value, 12)) for p in op.params)
    return (op.name, op.wires, params)


@dataclass(frozen=True)
class AuditResult:
    """Gate-level differences between a source circuit and its compiled version."""

    added: int
    removed: int
    changed: int

    @property
    def score(self) -> int:
        """Total number of differing gates (0 = the compiler changed nothing)."""
        return self.added + self.removed + self.changed


def gate_audit(source: Circuit, compiled: Circuit) -> AuditResult:
    """Diff the op sequences (gate name, wires, angle sources; fixed angles by value)."""
    a = [_signature(op) for op in source.ops]
    b = [_signature(op) for op in compiled.ops]
    added = removed = changed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "insert":
            added += j2 - j1
        elif tag == "delete":
            removed += i2 - i1
        elif tag == "replace":
            common = min(i2 - i1, j2 - j1)
            changed += common
            added += (j2 - j1) - common
            removed += (i2 - i1) - common
    return AuditResult(added, removed, changed)


def _is_identity(op: Op) -> bool:
    if op.name not in ("RX", "RY", "RZ") or op.params[0].kind in ("input", "weight"):
        return False
    turns = op.params[0].value / (2 * math.pi)
    return abs(turns - round(turns)) < IDENTITY_ATOL


def strip_identities(circuit: Circuit) -> Circuit:
    """Drop single-axis rotations with a fixed angle that is a multiple of 2π."""
    return Circuit(circuit.n_qubits, tuple(op for op in circuit.ops if not _is_identity(op)))


def output_spread(model: QNN, circuit: Circuit, probe: torch.Tensor, shots: int = 0,
                  generator: torch.Generator | None = None) -> float:
    """Mean over readout qubits of the standard deviation of ``<Z_c>`` across probe inputs."""
    if probe.shape[0] < 2:
        raise ValueError("output_spread needs at least 2 probe inputs")
    with torch.no_grad():
        state = model.state(probe, circuit)
        wires = list(range(model.n_classes))
        if shots:
            if generator is None:
                raise ValueError("finite-shot output_spread needs a generator")
            ev = sample_expval_z(state, shots, generator, wires)
        else:
            ev = model.readout(state) / model.tau
    return float(ev.std(dim=0).mean())


@dataclass(frozen=True)
class Roc:
    """ROC points (ascending false positive rate) and the area under the curve."""

    fpr: tuple[float, ...]
    tpr: tuple[float, ...]
    auc: float


def roc(benign: Sequence[float], attacked: Sequence[float]) -> Roc:
    """ROC of the rule "flag if score >= threshold" (higher score = more suspicious)."""
    if not benign or not attacked:
        raise ValueError("roc needs at least one benign and one attacked score")
    thresholds = sorted(set(benign) | set(attacked), reverse=True)
    fpr, tpr = [0.0], [0.0]
    for th in thresholds:
        fpr.append(sum(s >= th for s in benign) / len(benign))
        tpr.append(sum(s >= th for s in attacked) / len(attacked))
    wins = sum((a > b) + 0.5 * (a == b) for a in attacked for b in benign)
    return Roc(tuple(fpr), tuple(tpr), wins / (len(benign) * len(attacked)))


def threshold_at_fpr(benign: Sequence[float], max_fpr: float) -> float:
    """Lowest threshold (just above a benign score) whose false positive rate on ``benign``
    is at most ``max_fpr``; chosen on calibration circuits, then applied to held-out ones."""
    if not benign:
        raise ValueError("threshold_at_fpr needs benign scores")
    if not 0.0 <= max_fpr < 1.0:
        raise ValueError(f"max_fpr must be in [0, 1), got {max_fpr}")
    for v in sorted(set(benign)):
        if sum(s > v for s in benign) / len(benign) <= max_fpr:
            return math.nextafter(v, math.inf)
    raise AssertionError("unreachable: the largest benign score always qualifies")
