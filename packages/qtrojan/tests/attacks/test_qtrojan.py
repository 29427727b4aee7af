"""QTrojan on a trained victim: transparency, input independence, target selection
(design §10 items 5, 6, 7 and 11)."""

from __future__ import annotations

import copy
import inspect
import math

import pytest
import torch

import qtrojan.data as data_module
from qtrojan.attacks.qtrojan import (
    activate,
    build_config,
    deactivate,
    deploy,
    encoder_and_ansatz,
    select_target_state,
)
from qtrojan.circuit import angle_encoder, layered_ansatz
from qtrojan.compiler import WrapConfig
from qtrojan.data import TaskData
from qtrojan.metrics import accuracy, attack_success_rate, target_margin
from qtrojan.qnn import QNN
from qtrojan.training import train


@pytest.mark.parametrize("omit", [False, True])
def test_disabled_backdoor_is_bit_exact(trained01: QNN, digits01: TaskData, omit: bool) -> None:
    state = select_target_state(trained01, 1)
    off, _ = deploy(trained01, build_config(trained01, state, enabled=False,
                                            omit_when_disabled=omit))
    x = digits01.x_test
    for method in ("fast", "gates"):
        assert torch.equal(trained01(x, off, method), trained01(x, method=method))
    assert (accuracy(trained01.predict(x, off), digits01.y_test)
            == accuracy(trained01.predict(x), digits01.y_test))


@pytest.mark.parametrize("target", [0, 1])
def test_enabled_backdoor_ignores_input_and_hits_target(trained01: QNN, digits01: TaskData,
                                                        target: int) -> None:
    state = select_target_state(trained01, target)
    assert state.margin > 0
    on, _ = deploy(trained01, build_config(trained01, state))
    logits = trained01(digits01.x_test, on)
    assert logits.std(dim=0).max() < 1e-6
    # the constant output is the one target selection computed from the weights
    assert torch.allclose(target_margin(logits, target), torch.tensor(state.margin), atol=1e-5)
    pred = trained01.predict(digits01.x_test, on)
    assert attack_success_rate(pred, target) == 1.0
    assert attack_success_rate(pred, target, digits01.y_test, non_target_only=True) == 1.0


def test_basis_search_picks_the_best_basis_state(trained0123: QNN) -> None:
    for target in range(4):
        best = select_target_state(trained0123, target)
        # brute force over every basis state through the full compiled circuit
        margins = []
        for k in range(16):
            bits = tuple((k >> (3 - i)) & 1 for i in range(4))
            st = type(best)(target, bits, 0.0)
            circ, _ = deploy(trained0123, build_config(trained0123, st))
            logits = trained0123(torch.zeros(1, 4), circ).detach()
            margins.append(float(target_margin(logits, target)))
        assert best.margin == pytest.approx(max(margins), abs=1e-5)


def test_opt_mode_never_loses_margin(trained0123: QNN) -> None:
    for target in range(4):
        basis = select_target_state(trained0123, target, "basis")
        opt = select_target_state(trained0123, target, "opt", steps=100)
        assert opt.margin >= basis.margin - 1e-6
        circ, report = deploy(trained0123, build_config(trained0123, opt))
        logits = trained0123(torch.rand(8, 4) * math.pi, circ)
        assert torch.allclose(target_margin(logits, target),
                              torch.full((8,), opt.margin), atol=1e-4)
        if opt.mode == "opt":
            assert report.inserted == 4 * trained0123.n_qubits


class _Untouchable:
    """A dataset stand-in that fails the test if anything reads it."""

    def __getattr__(self, name: str):
        raise AssertionError(f"target selection touched the data ({name})")

    def __len__(self) -> int:
        raise AssertionError("target selection touched the data (len)")

    def __iter__(self):
        raise AssertionError("target selection touched the data (iter)")


def test_target_selection_needs_no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    params = set(inspect.signature(select_target_state).parameters)
    assert params == {"model", "target", "mode", "steps", "lr", "chunk"}  # no data argument
    for name in ("load_digits_images", "load_mnist5k_images", "load_idx_images",
                 "load_images", "prepare_task"):
        monkeypatch.setattr(data_module, name, _Untouchable())
    model = QNN(4, 2, 2, seed=5)  # untrained: selection works from the weights alone
    model.train_data = _Untouchable()  # type: ignore[attr-defined]
    for mode in ("basis", "opt"):
        state = select_target_state(model, 1, mode, steps=20)
        on, _ = deploy(model, build_config(model, state))
        assert torch.equal(model.predict(torch.rand(5, 4), on), torch.ones(5, dtype=torch.long))


def test_activation_through_the_config_file_only(tmp_path, trained01: QNN,
                                                 digits01: TaskData) -> None:
    path = tmp_path / "backend_calibration.json"
    build_config(trained01, select_target_state(trained01, 0), enabled=False).save(path)
    x = digits01.x_test

    def compiled_predictions() -> torch.Tensor:
        circ, _ = deploy(trained01, WrapConfig.load(path))
        return trained01.predict(x, circ)

    assert torch.equal(compiled_predictions(), trained01.predict(x))
    assert activate(path).enabled
    assert attack_success_rate(compiled_predictions(), 0) == 1.0
    assert not deactivate(path).enabled
    assert torch.equal(compiled_predictions(), trained01.predict(x))


def test_backdoor_survives_victim_retraining(trained01: QNN, digits01: TaskData) -> None:
    """L5: the backdoor does not live in theta; re-select the state after fine-tuning."""
    victim = copy.deepcopy(trained01)
    train(victim, digits01.x_train, digits01.y_train, epochs=1, seed=1)
    assert not torch.equal(victim.weights, trained01.weights)
    state = select_target_state(victim, 1)
    on, _ = deploy(victim, build_config(victim, state))
    pred = victim.predict(digits01.x_test, on)
    assert attack_success_rate(pred, 1, digits01.y_test, non_target_only=True) == 1.0


def test_unsupported_circuits_are_rejected() -> None:
    reupload = angle_encoder(2) + layered_ansatz(2, 1) + angle_encoder(2)
    with pytest.raises(ValueError, match="re-uploading"):
        encoder_and_ansatz(reupload)
    with pytest.raises(ValueError, match="no encoding"):
        encoder_and_ansatz(layered_ansatz(2, 1))
    with pytest.raises(ValueError, match="target"):
        select_target_state(QNN(2, 1, 2), 2)
    with pytest.raises(ValueError, match="mode"):
        select_target_state(QNN(2, 1, 2), 0, "guess")


@pytest.mark.parametrize("path", ["split", "chunked"])
def test_selection_above_the_unitary_limit_agrees(monkeypatch, path: str) -> None:
    """Selection without the 2^n x 2^n unitary (used above 12 qubits): the operator-Schmidt
    split, or the chunked simulator where the split is too large, gives the same answer."""
    import qtrojan.attacks.qtrojan as qt
    import qtrojan.bipartite as bp

    model = QNN(5, 2, 3, seed=11)
    for target in range(3):
        ref_basis = qt.select_target_state(model, target)
        ref_opt = qt.select_target_state(model, target, "opt", steps=40)
        monkeypatch.setattr(qt, "UNITARY_MAX_QUBITS", 3)
        if path == "chunked":
            monkeypatch.setattr(bp, "MAX_GRAM_ENTRIES", 0)
        basis = qt.select_target_state(model, target, chunk=7)
        opt = qt.select_target_state(model, target, "opt", steps=40, chunk=7)
        monkeypatch.undo()
        assert basis.bits == ref_basis.bits
        assert basis.margin == pytest.approx(ref_basis.margin, abs=1e-5)
        # 40 Adam steps on another float path: equal up to the optimiser's drift
        assert opt.margin == pytest.approx(ref_opt.margin, abs=1e-2)


@pytest.mark.parametrize(("n", "classes", "seed"), [(6, 2, 0), (8, 4, 1), (9, 3, 2), (10, 2, 3)])
def test_split_search_finds_the_exhaustive_target_state(monkeypatch, n: int, classes: int,
                                                        seed: int) -> None:
    """The fast search (operator-Schmidt split) returns the state of the exhaustive search
    over the unitary's rows, for every target, up to 10 qubits."""
    import qtrojan.attacks.qtrojan as qt

    model = QNN(n, 2, classes, seed=seed)
    exhaustive = [qt.select_target_state(model, t) for t in range(classes)]
    monkeypatch.setattr(qt, "UNITARY_MAX_QUBITS", 3)
    for t, ref in enumerate(exhaustive):
        fast = qt.select_target_state(model, t)
        assert fast.bits == ref.bits
        assert fast.margin == pytest.approx(ref.margin, abs=1e-5)


def test_split_search_on_a_trained_victim(monkeypatch, trained0123: QNN) -> None:
    import qtrojan.attacks.qtrojan as qt

    exhaustive = [qt.select_target_state(trained0123, t) for t in range(4)]
    monkeypatch.setattr(qt, "UNITARY_MAX_QUBITS", 3)
    for t, ref in enumerate(exhaustive):
        fast = qt.select_target_state(trained0123, t)
        assert fast.bits == ref.bits
        assert fast.margin == pytest.approx(ref.margin, abs=1e-5)


def test_near_ties_go_to_the_lowest_index() -> None:
    from qtrojan.attacks.qtrojan import TIE_TOLERANCE, best_basis_index

    assert best_basis_index(torch.tensor([0.1, 0.5, 0.5 + TIE_TOLERANCE / 2, 0.2])) == 1
    assert best_basis_index(torch.tensor([0.1, 0.5, 0.5 + 2 * TIE_TOLERANCE, 0.2])) == 2
