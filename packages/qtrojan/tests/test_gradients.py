"""Autograd gradients equal the parameter-shift rule (design §10 item 2).

For a gate ``exp(-i theta P / 2)`` with a Pauli ``P``:
``df/dtheta = [f(theta + pi/2) - f(theta - pi/2)] / 2`` exactly.
"""

from __future__ import annotations

import math

import pytest
import torch

from qtrojan.qnn import QNN


def _loss(model: QNN, x: torch.Tensor, method: str) -> torch.Tensor:
    return model(x, method=method).sum()


@pytest.mark.parametrize("method", ["fast", "gates"])
def test_weight_gradients_match_parameter_shift(method: str) -> None:
    model = QNN(3, 2, 3, seed=1)
    x = torch.rand(5, 3, generator=torch.Generator().manual_seed(0)) * math.pi
    model.zero_grad()
    _loss(model, x, method).backward()
    auto = model.weights.grad.clone()
    shifted = []
    with torch.no_grad():
        base = model.weights.clone()
        for k in range(base.numel()):
            vals = []
            for s in (math.pi / 2, -math.pi / 2):
                model.weights.copy_(base)
                model.weights[k] += s
                vals.append(_loss(model, x, method))
            shifted.append((vals[0] - vals[1]) / 2)
        model.weights.copy_(base)
    assert torch.allclose(auto, torch.stack(shifted), atol=1e-4)


def test_u3_angles_and_inputs_match_parameter_shift() -> None:
    # U3 = RZ(phi) RY(theta) RZ(lambda) up to phase, so each U3 angle obeys the shift rule too;
    # input angles enter through RY(x) and obey it as well. (CU3 angles need a 4-term rule.)
    model = QNN(2, 1, 2, ansatz="u3cu3", seed=2)
    x = torch.rand(1, 2, generator=torch.Generator().manual_seed(1)) * math.pi
    x.requires_grad_(True)
    model.zero_grad()
    _loss(model, x, "fast").backward()
    for k in range(6):  # the six U3 angles of the only layer come first
        with torch.no_grad():
            vals = []
            for s in (math.pi / 2, -math.pi / 2):
                model.weights[k] += s
                vals.append(_loss(model, x, "fast"))
                model.weights[k] -= s
        assert abs(model.weights.grad[k] - (vals[0] - vals[1]) / 2) < 1e-4
    for i in range(2):
        with torch.no_grad():
            vals = []
            for s in (math.pi / 2, -math.pi / 2):
                xs = x.detach().clone()
                xs[0, i] += s
                vals.append(_loss(model, xs, "fast"))
        assert abs(x.grad[0, i] - (vals[0] - vals[1]) / 2) < 1e-4
