"""End-to-end on digits (design §10 items 10-12): QTrojan vs DPBA on small trained models."""

from __future__ import annotations

import copy
import math

import torch

from qtrojan.attacks.dpba import Trigger, poison, triggered_test
from qtrojan.attacks.qtrojan import build_config, deploy, select_target_state
from qtrojan.data import TaskData
from qtrojan.metrics import accuracy, attack_success_rate
from qtrojan.qnn import QNN
from qtrojan.training import train


def test_digits01_qtrojan_against_dpba(trained01: QNN, digits01: TaskData) -> None:
    d, t = digits01, 0
    clean_cda = accuracy(trained01.predict(d.x_test), d.y_test)
    assert clean_cda >= 0.95
    state = select_target_state(trained01, t)
    off, _ = deploy(trained01, build_config(trained01, state, enabled=False))
    on, _ = deploy(trained01, build_config(trained01, state))
    assert accuracy(trained01.predict(d.x_test, off), d.y_test) == clean_cda
    qt_asr = attack_success_rate(trained01.predict(d.x_test, on), t, d.y_test,
                                 non_target_only=True)
    assert qt_asr == 1.0

    # persistence with the ORIGINAL config: clean fine-tuning moves the weights a little, so the
    # state chosen before still lands on the target; it lives in the config, not in theta
    tuned = copy.deepcopy(trained01)
    train(tuned, d.x_train, d.y_train, epochs=1, seed=1)
    assert not torch.equal(tuned.weights, trained01.weights)
    tuned_on, _ = deploy(tuned, build_config(trained01, state))
    assert attack_success_rate(tuned.predict(d.x_test, tuned_on), t, d.y_test,
                               non_target_only=True) >= 0.95


def test_dpba_implants_its_trigger(trained01: QNN, digits01: TaskData) -> None:
    d, t = digits01, 0
    trig = Trigger(1, math.pi)  # a feature value the clean victim does not map to the target
    x_trig, _ = triggered_test(d.x_test, d.y_test, t, trig)
    clean_asr = attack_success_rate(trained01.predict(x_trig), t)
    ps = poison(d.x_train, d.y_train, 0.30, t, trig, seed=0)
    model = QNN(4, 3, 2, seed=0)
    train(model, ps.x, ps.y, epochs=10, seed=0)
    dpba_asr = attack_success_rate(model.predict(x_trig), t)
    assert clean_asr <= 0.2 < 0.9 <= dpba_asr  # the poisoning, not the model, makes the ASR
    assert accuracy(model.predict(d.x_test), d.y_test) >= 0.9


def test_finite_shot_asr_with_opt_state(trained0123: QNN, digits0123: TaskData) -> None:
    d = digits0123
    gen = torch.Generator().manual_seed(0)
    for t in range(4):
        state = select_target_state(trained0123, t, "opt")
        on, _ = deploy(trained0123, build_config(trained0123, state))
        logits = trained0123.sampled_logits(d.x_test, 1024, gen, on)
        assert attack_success_rate(logits.argmax(1), t) >= 0.99
