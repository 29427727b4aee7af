"""Detectors: the gate audit, identity stripping, the output-spread probe and ROC arithmetic."""

from __future__ import annotations

import math

import pytest
import torch

from qtrojan.attacks.qtrojan import build_config, deploy, select_target_state
from qtrojan.detect import (
    gate_audit,
    output_spread,
    roc,
    strip_identities,
    threshold_at_fpr,
)
from qtrojan.qnn import QNN


@pytest.fixture(scope="module")
def victim() -> tuple[QNN, dict]:
    model = QNN(4, 2, 2, seed=0)
    state = select_target_state(model, 0)
    circuits = {name: deploy(model, build_config(model, state, enabled=on,
                                                 omit_when_disabled=omit))[0]
                for name, on, omit in (("on", True, False), ("rx0", False, False),
                                       ("omitted", False, True))}
    return model, circuits


def test_audit_counts_exactly_the_inserted_gates(victim) -> None:
    model, c = victim
    assert gate_audit(model.circuit, model.circuit).score == 0
    assert gate_audit(model.circuit, c["on"]).added == 8
    assert gate_audit(model.circuit, c["rx0"]).score == 8
    assert gate_audit(model.circuit, c["omitted"]).score == 0
    # a changed weight source is a changed gate, a removed gate is counted as removed
    ops = list(model.circuit.ops)
    assert gate_audit(model.circuit, type(model.circuit)(4, tuple(ops[1:]))).removed == 1


def test_stripping_removes_dormant_gates_but_not_the_active_backdoor(victim) -> None:
    model, c = victim
    assert strip_identities(c["rx0"]) == model.circuit
    stripped_on = strip_identities(c["on"])
    assert stripped_on == c["on"]  # +-pi/2 wrap gates are not identities
    x = torch.rand(16, 4, generator=torch.Generator().manual_seed(0)) * math.pi
    assert torch.equal(model(x, stripped_on), model(x, c["on"]))


def test_output_spread_collapses_only_for_the_active_backdoor(victim) -> None:
    model, c = victim
    x = torch.rand(64, 4, generator=torch.Generator().manual_seed(1)) * math.pi
    assert output_spread(model, c["on"], x) < 1e-6
    assert output_spread(model, model.circuit, x) > 0.05
    assert output_spread(model, c["omitted"], x) == output_spread(model, model.circuit, x)
    gen = torch.Generator().manual_seed(0)
    noisy = output_spread(model, c["on"], x, shots=1024, generator=gen)
    assert 0 < noisy < 0.05  # shot noise only
    with pytest.raises(ValueError, match="generator"):
        output_spread(model, c["on"], x, shots=8)


def test_roc_auc_and_calibrated_threshold() -> None:
    curve = roc([0.0, 1.0, 2.0], [1.5, 3.0])
    # pairs (attacked > benign): 1.5 beats 0 and 1, 3.0 beats all three -> 5 of 6
    assert curve.auc == pytest.approx(5 / 6)
    assert curve.fpr[0] == 0.0 and curve.tpr[-1] == 1.0 and curve.fpr[-1] == 1.0
    assert roc([0.0, 0.0], [0.0]).auc == 0.5   # ties count one half
    benign = [0.0] * 18 + [1.0, 2.0]
    th = threshold_at_fpr(benign, 0.05)
    assert 1.0 < th <= 2.0 and sum(s >= th for s in benign) / 20 <= 0.05
    assert threshold_at_fpr([0.0, 0.0], 0.0) > 0.0
    with pytest.raises(ValueError):
        roc([], [1.0])
