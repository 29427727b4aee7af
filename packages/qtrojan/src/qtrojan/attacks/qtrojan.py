"""QTrojan (Chu et al., ICASSP 2023): neutralise the encoding, force a chosen basis state.

Design qtrojan.md §2. When enabled, the wrap gates inserted by
:func:`qtrojan.compiler.compile_circuit` turn every encoded qubit into a fixed state whatever
the input: for an RY encoding, ``RX(pi/2)`` maps ``|0>`` to the ``-1`` eigenstate of Y, which
``RY(x)`` only multiplies by a phase, and ``RX(-pi/2)`` (= ``RX(3 pi/2)`` up to a global
phase) returns it to ``|0>`` while ``RX(pi/2)`` sends it to ``|1>`` (the X-axis case is the
same with RY gates, see :data:`qtrojan.compiler.WRAP_AXIS`). The prepared state is a basis
state ``|s>`` and the output is the constant ``W(theta)|s>``, so every input gets one class.

Target selection uses the weights only (§2.4): basis search evaluates ``W(theta)|s>`` for all
``2**n`` basis states (the rows of the ansatz unitary up to 12 qubits; above, exactly and without
the unitary, by the operator-Schmidt split of :mod:`qtrojan.bipartite`, or by running the basis
states through the simulator where that split would be too large) and keeps the largest margin;
the continuous variant ("QTrojan-opt", an extension of the design) starts there and runs Adam
on per-qubit ``RY(phi) RZ(lambda)`` angles to maximise the margin, which helps under shot noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from qtrojan.bipartite import basis_expvals, feasible
from qtrojan.circuit import Circuit, Op, Param, angle_encoder
from qtrojan.compiler import NEEDS_PRE, CompileReport, WrapConfig, compile_circuit
from qtrojan.executor import execute, unitary_rows
from qtrojan.metrics import target_margin
from qtrojan.qnn import QNN
from qtrojan.sim import kron_product_state, ry, rz

HALF_PI = math.pi / 2
SELECTION_MODES = ("basis", "opt")


@dataclass(frozen=True)
class TargetState:
    """The state the enabled backdoor prepares, and its target margin under exact readout."""

    target: int
    bits: tuple[int, ...]
    margin: float
    mode: str = "basis"
    tail: tuple[tuple[float, float], ...] | None = None


def neutralising_angles(axis: str, bit: int, last_on_wire: bool = True) -> tuple[float, float]:
    """``(pre, post)`` wrap angles for one encoding gate on ``axis`` (design §2.3 table).

    X/Y axis: ``pre = pi/2``; ``post = -pi/2`` gives ``|0>``, ``post = pi/2`` gives ``|1>``.
    Z axis: no pre gate (angle 0 is returned and unused); ``post = pi * bit``. Encoding gates
    that are not the last one on their wire return the qubit to ``|0>``.
    """
    if axis not in NEEDS_PRE:
        raise ValueError(f"axis must be one of {sorted(NEEDS_PRE)}, got {axis!r}")
    if bit not in (0, 1):
        raise ValueError(f"bit must be 0 or 1, got {bit!r}")
    b = bit if last_on_wire else 0
    if NEEDS_PRE[axis]:
        return HALF_PI, HALF_PI if b else -HALF_PI
    return 0.0, math.pi * b


def encoder_and_ansatz(circuit: Circuit) -> tuple[tuple[Op, ...], tuple[Op, ...]]:
    """Split into the leading block of encoding rotations and the data-independent rest.

    Raises ``ValueError`` for circuits the attack cannot neutralise with local gates: an
    encoding gate after a non-encoding gate (data re-uploading, limitation L4) or an encoding
    gate that is not a single-axis rotation (limitation L2).
    """
    enc = circuit.encoding_indices()
    if not enc:
        raise ValueError("circuit has no encoding gates")
    if enc != list(range(len(enc))):
        raise ValueError("encoding gates must form the leading block of the circuit "
                         "(data re-uploading cannot be neutralised by local gates, L4)")
    for i in enc:
        if circuit.ops[i].axis is None:
            raise ValueError(f"encoding gate {circuit.ops[i].name} is not a single-axis "
                             f"rotation (limitation L2)")
    return circuit.ops[:len(enc)], circuit.ops[len(enc):]


#: basis states whose margins differ by less than this are tied; the lowest index wins, so the
#: chosen state does not depend on which exact path (unitary, split, chunks) computed them
TIE_TOLERANCE = 1e-5


def best_basis_index(margins: torch.Tensor) -> int:
    """Index of the largest margin; near-ties (:data:`TIE_TOLERANCE`) go to the lowest index."""
    top = margins.max()
    return int(torch.nonzero(margins >= top - TIE_TOLERANCE)[0, 0])


def _basis_index_bits(index: int, n: int) -> tuple[int, ...]:
    return tuple((index >> (n - 1 - i)) & 1 for i in range(n))


def _opt_state(phi: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    qubits = [(rz(lam[i]) @ ry(phi[i]))[:, 0].unsqueeze(0) for i in range(phi.shape[0])]
    return kron_product_state(qubits)


#: above this many qubits the ansatz unitary (2^n x 2^n) is not built: basis margins come from
#: :func:`qtrojan.bipartite.basis_expvals` (or, where that split is too large, from basis states
#: run through the planned simulator in chunks), and the opt tail is optimised through the
#: simulator
UNITARY_MAX_QUBITS = 12


def _basis_margins(model: QNN, ansatz: tuple[Op, ...], target: int, chunk: int
                   ) -> torch.Tensor:
    """Target margin of ``W|s>`` for every basis state ``s``, without the unitary."""
    n = model.n_qubits
    if feasible(ansatz, n):
        e = basis_expvals(ansatz, n, model.weights.detach(), list(range(model.n_classes)))
        return target_margin(model.logits_from_expvals(e), target)
    return _basis_margins_chunked(model, ansatz, target, chunk)


def _basis_margins_chunked(model: QNN, ansatz: tuple[Op, ...], target: int,
                           chunk: int, first: int = 0, stop: int | None = None) -> torch.Tensor:
    """Target margin of ``W|s>`` for the basis states ``s`` in ``[first, stop)`` (default: all),
    ``chunk`` states at a time, through the simulator.

    ``|s>`` is prepared as ``RX(pi * s_i)`` on each qubit (``-i|1>`` for a 1 bit: a phase the
    ``<Z>`` readout does not see).
    """
    n = model.n_qubits
    end = 2**n if stop is None else min(stop, 2**n)
    circuit = angle_encoder(n, "X") + Circuit(n, ansatz)
    w = model.weights.detach()
    out = []
    with torch.no_grad():
        for start in range(first, end, chunk):
            idx = torch.arange(start, min(start + chunk, end))
            bits = torch.stack([(idx >> (n - 1 - i)) & 1 for i in range(n)], dim=1)
            state = execute(circuit, math.pi * bits.to(torch.float32), w)
            out.append(target_margin(model.readout(state), target))
    return torch.cat(out)


def _opt_margin_fn(model: QNN, ansatz: tuple[Op, ...], target: int
                   ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Margin of ``W (x)_i RZ(l_i) RY(phi_i)|0>`` through the simulator (no unitary)."""
    n = model.n_qubits
    tail = tuple(Op("RY", (i,), (Param("input", i),)) for i in range(n)) + \
        tuple(Op("RZ", (i,), (Param("input", n + i),)) for i in range(n))
    circuit = Circuit(n, tail + ansatz)
    w = model.weights.detach()

    def margin(phi: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        return target_margin(model.readout(execute(circuit, torch.cat([phi, lam])[None], w)),
                             target)

    return margin


def select_target_state(model: QNN, target: int, mode: str = "basis", steps: int = 300,
                        lr: float = 0.05, chunk: int = 256) -> TargetState:
    """Choose the backdoor state for class ``target`` from the model's weights alone.

    Needs no data (design §2.4): ``basis`` mode evaluates all ``2**n`` basis states exactly
    (up to 12 qubits from the unitary's rows, above from :func:`qtrojan.bipartite.basis_expvals`)
    and keeps the largest margin (near-ties: the lowest index); ``opt`` mode then maximises the
    margin over product states by gradient ascent.
    """
    if not 0 <= target < model.n_classes:
        raise ValueError(f"target must be in [0, {model.n_classes}), got {target}")
    if mode not in SELECTION_MODES:
        raise ValueError(f"mode must be one of {SELECTION_MODES}, got {mode!r}")
    n = model.n_qubits
    _, ansatz = encoder_and_ansatz(model.circuit)
    if n <= UNITARY_MAX_QUBITS:
        with torch.no_grad():
            rows = unitary_rows(ansatz, n, model.weights.detach())
            margins = target_margin(model.readout(rows), target)

        def margin_of(phi: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
            return target_margin(model.readout(_opt_state(phi, lam) @ rows), target)
    else:
        margins = _basis_margins(model, ansatz, target, chunk)
        margin_of = _opt_margin_fn(model, ansatz, target)
    best = best_basis_index(margins)
    bits = _basis_index_bits(best, n)
    if mode == "basis":
        return TargetState(target, bits, float(margins[best]), "basis")
    phi = torch.tensor([math.pi * b for b in bits], requires_grad=True)
    lam = torch.zeros(n, requires_grad=True)
    opt = torch.optim.Adam([phi, lam], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = -margin_of(phi, lam).sum()
        loss.backward()
        opt.step()
    with torch.no_grad():
        margin = float(margin_of(phi, lam)[0])
    if margin < float(margins[best]):  # never worse than the basis state it started from
        return TargetState(target, bits, float(margins[best]), "basis")
    tail = tuple((float(p), float(q)) for p, q in zip(phi.detach(), lam.detach(), strict=True))
    return TargetState(target, (0,) * n, margin, "opt", tail)


def build_config(model: QNN, state: TargetState, enabled: bool = True,
                 omit_when_disabled: bool = False) -> WrapConfig:
    """The configuration entry that makes the compiled circuit prepare ``state``."""
    encoder, _ = encoder_and_ansatz(model.circuit)
    last = {op.wires[0]: k for k, op in enumerate(encoder)}
    pre, post = [], []
    for k, op in enumerate(encoder):
        w = op.wires[0]
        a, b = neutralising_angles(op.axis or "", state.bits[w], last_on_wire=last[w] == k)
        pre.append(a)
        post.append(b)
    return WrapConfig(enabled=enabled, omit_when_disabled=omit_when_disabled, pre=tuple(pre),
                      post=tuple(post), tail=state.tail)


def deploy(model: QNN, config: WrapConfig) -> tuple[Circuit, CompileReport]:
    """Compile the model's circuit with the configuration (what the compromised server runs)."""
    return compile_circuit(model.circuit, config)


def set_enabled(path: str | Path, enabled: bool) -> WrapConfig:
    """Switch the backdoor on or off by editing the configuration file only."""
    cfg = WrapConfig.load(path)
    new = WrapConfig(enabled=enabled, omit_when_disabled=cfg.omit_when_disabled, pre=cfg.pre,
                     post=cfg.post, tail=cfg.tail)
    new.save(path)
    return new


def activate(path: str | Path) -> WrapConfig:
    """Turn the backdoor on (``enabled = true`` in the config file)."""
    return set_enabled(path, True)


def deactivate(path: str | Path) -> WrapConfig:
    """Turn the backdoor off (``enabled = false``; the circuit is the victim's again)."""
    return set_enabled(path, False)
