"""Noisy execution: depolarising gate noise (density matrix) and readout bit flips.

Why: QTrojan and DPBA are claimed for NISQ hardware, so their clean accuracy (CDA) and attack
success (ASR) must be measured under noise, not only on the exact statevector.

Noise model (:class:`NoiseModel`):

* **Depolarising**, strength ``p``: after every gate, each wire the gate acts on goes through
  the single-qubit channel ``rho -> (1 - p) rho + p/3 (X rho X + Y rho Y + Z rho Z)`` (PennyLane's
  ``DepolarizingChannel`` convention). Using ``sum_P P rho P = 2 I (x) Tr_w rho`` this is
  ``(1 - 4p/3) rho + 4p/3 (I/2 (x) Tr_w rho)``, which is how it is applied. Every gate counts,
  including the inserted calibration gates and a dormant QTrojan's ``RX(0)`` gates: a real
  device executes them and adds their error.
* **Readout**, strength ``q``: each measured bit flips with probability ``q`` (symmetric). In
  expectation ``<Z_i> -> (1 - 2q) <Z_i>``; with finite shots the flips are sampled.

Strength 0 of both reproduces the statevector result (tested). The density matrix is
``(B, 2**n, 2**n)``, so this path is meant for the small registers of the noise study.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from qtrojan.circuit import Circuit
from qtrojan.executor import op_matrix
from qtrojan.sim import CDTYPE, apply_gate, z_signs


@dataclass(frozen=True)
class NoiseModel:
    """Depolarising probability per gate and wire, and readout flip probability per bit."""

    depolarizing: float = 0.0
    readout: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.depolarizing) and 0.0 <= self.depolarizing <= 0.75):
            raise ValueError(f"depolarizing must be in [0, 0.75] (0.75 = fully mixing), got "
                             f"{self.depolarizing}")
        if not (math.isfinite(self.readout) and 0.0 <= self.readout <= 0.5):
            raise ValueError(f"readout flip probability must be in [0, 0.5], got {self.readout}")

    @property
    def is_noiseless(self) -> bool:
        return self.depolarizing == 0.0 and self.readout == 0.0


def _left_apply(rho: torch.Tensor, matrix: torch.Tensor, wires: tuple[int, ...], n: int
                ) -> torch.Tensor:
    """``U rho`` for a batch of density matrices (``U`` shared or one per sample)."""
    b, d, _ = rho.shape
    cols = rho.transpose(1, 2).reshape(b * d, d)  # row k*d + j is column j of rho_k
    if matrix.ndim == 3:
        matrix = matrix.repeat_interleave(d, dim=0)
    out = apply_gate(cols, matrix, wires, n)
    return out.reshape(b, d, d).transpose(1, 2)


def apply_unitary(rho: torch.Tensor, matrix: torch.Tensor, wires: tuple[int, ...], n: int
                  ) -> torch.Tensor:
    """``U rho U^dagger``, computed as ``U (U rho)^dagger`` (``rho`` is Hermitian)."""
    return _left_apply(_left_apply(rho, matrix, wires, n).conj().transpose(1, 2), matrix,
                       wires, n)


def depolarize(rho: torch.Tensor, wire: int, p: float, n: int) -> torch.Tensor:
    """Single-qubit depolarising channel of strength ``p`` on ``wire``."""
    if p == 0.0:
        return rho
    b, d, _ = rho.shape
    a, c = 2**wire, 2 ** (n - wire - 1)
    r = rho.reshape(b, a, 2, c, a, 2, c)
    reduced = r[:, :, 0, :, :, 0, :] + r[:, :, 1, :, :, 1, :]  # Tr_w rho, (b, a, c, a, c)
    eye = torch.eye(2, dtype=rho.dtype)
    mixed = 0.5 * torch.einsum("bikjl,xy->bixkjyl", reduced, eye).reshape(b, d, d)
    return (1 - 4 * p / 3) * rho + (4 * p / 3) * mixed


def density_matrix(circuit: Circuit, x: torch.Tensor, weights: torch.Tensor | None,
                   noise: NoiseModel) -> torch.Tensor:
    """Final density matrix ``(B, 2**n, 2**n)`` of ``circuit`` on each row of ``x``."""
    if x.ndim != 2 or x.shape[1] < circuit.n_inputs:
        raise ValueError(f"inputs must have shape (batch, >= {circuit.n_inputs}), got "
                         f"{tuple(x.shape)}")
    n = circuit.n_qubits
    d = 2**n
    rho = torch.zeros(x.shape[0], d, d, dtype=CDTYPE)
    rho[:, 0, 0] = 1
    for op in circuit.ops:
        rho = apply_unitary(rho, op_matrix(op, x, weights), op.wires, n)
        for w in op.wires:
            rho = depolarize(rho, w, noise.depolarizing, n)
    return rho


def diagonal_probabilities(rho: torch.Tensor) -> torch.Tensor:
    """Born probabilities ``rho_kk`` (real, clipped at 0 against rounding)."""
    return torch.diagonal(rho, dim1=1, dim2=2).real.clamp_min(0.0)


def noisy_expval_z(circuit: Circuit, x: torch.Tensor, weights: torch.Tensor | None,
                   noise: NoiseModel, wires: list[int]) -> torch.Tensor:
    """Exact ``<Z_i>`` under the noise model (readout flips included), ``(B, len(wires))``."""
    probs = diagonal_probabilities(density_matrix(circuit, x, weights, noise))
    signs = z_signs(circuit.n_qubits, dtype=probs.dtype)[:, wires]
    return (1 - 2 * noise.readout) * (probs @ signs)


def noisy_sampled_expval_z(circuit: Circuit, x: torch.Tensor, weights: torch.Tensor | None,
                           noise: NoiseModel, wires: list[int], shots: int,
                           generator: torch.Generator) -> torch.Tensor:
    """``<Z_i>`` from ``shots`` sampled bitstrings per row, each bit flipped with ``q``."""
    if shots < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    with torch.no_grad():
        probs = diagonal_probabilities(density_matrix(circuit, x, weights, noise))
    probs = probs.to(torch.float64)
    draws = torch.multinomial(probs / probs.sum(1, keepdim=True), shots, replacement=True,
                              generator=generator)
    signs = z_signs(circuit.n_qubits, dtype=torch.float64)[:, wires][draws]  # (B, shots, k)
    if noise.readout > 0:
        flips = torch.rand(signs.shape, generator=generator, dtype=torch.float64) < noise.readout
        signs = torch.where(flips, -signs, signs)
    return signs.mean(dim=1).to(torch.float32)
