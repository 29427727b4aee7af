"""Batched statevector simulation in plain PyTorch (design qtrojan.md §9.1).

Conventions:

* A state is a complex tensor of shape ``(B, 2**n)``; wire 0 is the most significant bit of
  the basis index, so ``|q0 q1 ... q_{n-1}>`` has index ``sum_i q_i 2**(n-1-i)``.
* Rotation gates follow the usual definition ``R_P(theta) = exp(-i theta P / 2)``; ``U3``
  is the OpenQASM/Qiskit ``U(theta, phi, lambda)``.
* Gate-matrix builders broadcast over the angle's shape: a scalar angle gives ``(2, 2)``, an
  angle of shape ``(B,)`` gives ``(B, 2, 2)`` (one gate per sample).

Everything is differentiable with autograd.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

CDTYPE = torch.complex64
RDTYPE = torch.float32


def _as_angle(theta: torch.Tensor | float) -> torch.Tensor:
    if not isinstance(theta, torch.Tensor):
        theta = torch.tensor(theta, dtype=RDTYPE)
    return theta


def _stack22(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Stack four broadcastable entries into ``[[a, b], [c, d]]`` with shape ``(..., 2, 2)``."""
    a, b, c, d = torch.broadcast_tensors(a, b, c, d)
    return torch.stack([torch.stack([a, b], -1), torch.stack([c, d], -1)], -2)


def _cdtype_for(theta: torch.Tensor) -> torch.dtype:
    return torch.complex128 if theta.dtype == torch.float64 else CDTYPE


def rx(theta: torch.Tensor | float) -> torch.Tensor:
    """``RX(theta) = [[cos t/2, -i sin t/2], [-i sin t/2, cos t/2]]``."""
    t = _as_angle(theta)
    c = torch.cos(t / 2).to(_cdtype_for(t))
    s = torch.sin(t / 2).to(_cdtype_for(t))
    return _stack22(c, -1j * s, -1j * s, c)


def ry(theta: torch.Tensor | float) -> torch.Tensor:
    """``RY(theta) = [[cos t/2, -sin t/2], [sin t/2, cos t/2]]``."""
    t = _as_angle(theta)
    c = torch.cos(t / 2).to(_cdtype_for(t))
    s = torch.sin(t / 2).to(_cdtype_for(t))
    return _stack22(c, -s, s, c)


def rz(theta: torch.Tensor | float) -> torch.Tensor:
    """``RZ(theta) = diag(exp(-i t/2), exp(i t/2))``."""
    t = _as_angle(theta)
    cd = _cdtype_for(t)
    e = torch.exp(-0.5j * t.to(cd))
    zero = torch.zeros_like(e)
    return _stack22(e, zero, zero, torch.conj(e))


def u3(theta: torch.Tensor | float, phi: torch.Tensor | float,
       lam: torch.Tensor | float) -> torch.Tensor:
    """``U3 = [[cos t/2, -e^{i l} sin t/2], [e^{i p} sin t/2, e^{i(p+l)} cos t/2]]``."""
    t, p, lm = _as_angle(theta), _as_angle(phi), _as_angle(lam)
    cd = _cdtype_for(t)
    c = torch.cos(t / 2).to(cd)
    s = torch.sin(t / 2).to(cd)
    ep = torch.exp(1j * p.to(cd))
    el = torch.exp(1j * lm.to(cd))
    return _stack22(c, -el * s, ep * s, ep * el * c)


def controlled(u: torch.Tensor) -> torch.Tensor:
    """Controlled-``u`` (control is the first wire): ``|0><0| (x) I + |1><1| (x) u``."""
    batch = u.shape[:-2]
    out = torch.zeros(*batch, 4, 4, dtype=u.dtype)
    out[..., 0, 0] = 1
    out[..., 1, 1] = 1
    out[..., 2:, 2:] = u
    return out


def cnot() -> torch.Tensor:
    """CNOT with control on the first wire."""
    m = torch.zeros(4, 4, dtype=CDTYPE)
    m[0, 0] = m[1, 1] = m[2, 3] = m[3, 2] = 1
    return m


def cz() -> torch.Tensor:
    """Controlled-Z."""
    return torch.diag(torch.tensor([1, 1, 1, -1], dtype=CDTYPE))


#: name -> (number of wires, number of angles, matrix builder taking the angles)
GATES: dict[str, tuple[int, int, Callable[..., torch.Tensor]]] = {
    "RX": (1, 1, rx),
    "RY": (1, 1, ry),
    "RZ": (1, 1, rz),
    "U3": (1, 3, u3),
    "CNOT": (2, 0, cnot),
    "CZ": (2, 0, cz),
    "CRX": (2, 1, lambda t: controlled(rx(t))),
    "CU3": (2, 3, lambda t, p, lm: controlled(u3(t, p, lm))),
}


def gate_matrix(name: str, *angles: torch.Tensor | float) -> torch.Tensor:
    """Matrix of gate ``name`` for the given angles (validated against :data:`GATES`)."""
    if name not in GATES:
        raise ValueError(f"unknown gate {name!r}; known: {sorted(GATES)}")
    _, n_par, fn = GATES[name]
    if len(angles) != n_par:
        raise ValueError(f"gate {name} takes {n_par} angle(s), got {len(angles)}")
    return fn(*angles)


def zero_state(n_qubits: int, batch: int = 1, dtype: torch.dtype = CDTYPE) -> torch.Tensor:
    """``|0...0>`` repeated ``batch`` times, shape ``(batch, 2**n)``."""
    psi = torch.zeros(batch, 2**n_qubits, dtype=dtype)
    psi[:, 0] = 1
    return psi


def basis_states(n_qubits: int, dtype: torch.dtype = CDTYPE) -> torch.Tensor:
    """All computational basis states as rows, shape ``(2**n, 2**n)`` (the identity)."""
    return torch.eye(2**n_qubits, dtype=dtype)


def apply_gate(state: torch.Tensor, matrix: torch.Tensor, wires: tuple[int, ...] | list[int],
               n_qubits: int) -> torch.Tensor:
    """Apply a ``k``-qubit gate to ``wires`` of a batched state (reference gate-by-gate path).

    ``matrix`` has shape ``(2**k, 2**k)`` (shared) or ``(B, 2**k, 2**k)`` (one per sample); its
    row/column index uses ``wires[0]`` as the most significant bit.
    """
    k = len(wires)
    if len(set(wires)) != k or any(not 0 <= w < n_qubits for w in wires):
        raise ValueError(f"invalid wires {wires} for {n_qubits} qubits")
    b = state.shape[0]
    psi = state.reshape(b, *([2] * n_qubits))
    src = [1 + w for w in wires]
    psi = torch.movedim(psi, src, list(range(1, k + 1)))
    moved_shape = psi.shape
    psi = psi.reshape(b, 2**k, -1)
    psi = torch.matmul(matrix.to(state.dtype), psi)
    psi = psi.reshape(moved_shape)
    psi = torch.movedim(psi, list(range(1, k + 1)), src)
    return psi.reshape(b, 2**n_qubits)


def kron_product_state(qubit_states: list[torch.Tensor]) -> torch.Tensor:
    """Tensor product of per-qubit states ``(B, 2)`` (wire 0 first) -> ``(B, 2**n)``.

    This is the fast path for product-state encoders (design §7, "kron fast path").
    """
    psi = qubit_states[0]
    for v in qubit_states[1:]:
        psi = (psi[:, :, None] * v[:, None, :]).reshape(psi.shape[0], -1)
    return psi


def z_signs(n_qubits: int, dtype: torch.dtype = RDTYPE) -> torch.Tensor:
    """Matrix ``(2**n, n)`` whose entry ``[k, i]`` is the eigenvalue of ``Z_i`` on basis ``k``.

    Cached per ``(n, dtype)``; callers must not modify the returned tensor in place.
    """
    return _z_signs_cached(n_qubits, dtype)


@functools.lru_cache(maxsize=64)
def _z_signs_cached(n_qubits: int, dtype: torch.dtype) -> torch.Tensor:
    idx = torch.arange(2**n_qubits)
    bits = torch.stack([(idx >> (n_qubits - 1 - i)) & 1 for i in range(n_qubits)], dim=1)
    return (1 - 2 * bits).to(dtype)


def probabilities(state: torch.Tensor) -> torch.Tensor:
    """Born-rule probabilities ``|psi_k|^2``."""
    return state.real**2 + state.imag**2


def expval_z(state: torch.Tensor, wires: list[int] | None = None) -> torch.Tensor:
    """Exact ``<Z_i>`` for each wire, shape ``(B, len(wires))``."""
    n = (state.shape[1]).bit_length() - 1
    signs = z_signs(n, dtype=state.real.dtype)
    if wires is not None:
        signs = signs[:, wires]
    return probabilities(state) @ signs


def sample_expval_z(state: torch.Tensor, shots: int, generator: torch.Generator,
                    wires: list[int] | None = None) -> torch.Tensor:
    """Finite-shot estimate of ``<Z_i>``: sample ``shots`` bitstrings per row and average.

    Each bitstring is drawn from the Born distribution with the given (seeded) generator.
    """
    if shots < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    n = (state.shape[1]).bit_length() - 1
    probs = probabilities(state.detach()).to(torch.float64)
    probs = probs / probs.sum(dim=1, keepdim=True)
    draws = torch.multinomial(probs, shots, replacement=True, generator=generator)
    signs = z_signs(n, dtype=torch.float64)
    if wires is not None:
        signs = signs[:, wires]
    return signs[draws].mean(dim=1).to(state.real.dtype)
