"""Per-workload defaults (flexsync.workloads): every built-in (dataset, model) pair trains with
only its defaults, and the user's keys always win over them."""

import pytest

from flexsync import build_config, train
from flexsync.data import DATASETS, LANGUAGE_DATASETS
from flexsync.models import MODELS
from flexsync.workloads import CHECKS, DEFAULTS

PAIRS = [(d, m) for d in DATASETS for m in MODELS
         if (d in LANGUAGE_DATASETS) == (m in ("lstm", "transformer"))]


def test_every_dataset_model_pair_has_defaults_and_a_check():
    assert sorted(DEFAULTS) == sorted(PAIRS) == sorted(CHECKS)


def test_user_keys_win_over_workload_defaults():
    cfg = build_config({"dataset": "stdlib-text", "model": "transformer"})
    assert cfg.optimizer.name == "adam" and cfg.optimizer.schedule == "cosine"
    assert cfg.data.seq_len == 64
    mine = build_config({"dataset": "stdlib-text", "model": "transformer",
                         "optimizer": {"lr": 0.5}}, ["data.seq_len=32"])
    assert mine.optimizer.lr == 0.5 and mine.optimizer.name == "adam"
    assert mine.data.seq_len == 32


def test_epochs_replace_the_workload_step_budget():
    cfg = build_config({"dataset": "synthetic-images-hard", "model": "resnet", "epochs": 1})
    assert cfg.steps is None and cfg.epochs == 1


def test_the_original_default_workload_keeps_the_global_defaults():
    cfg = build_config({})
    assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.optimizer.schedule) == ("sgd", 0.01,
                                                                               "constant")
    assert (cfg.batch_size, cfg.steps) == (32, 300)


@pytest.mark.parametrize("dataset,model", PAIRS, ids=[f"{d}-{m}" for d, m in PAIRS])
def test_dense_with_only_the_defaults_reaches_the_stated_quality(dataset, model, tmp_path):
    steps, bound = CHECKS[(dataset, model)]
    cfg = build_config({"dataset": dataset, "model": model, "workers": 2, "steps": steps,
                        "progress": False, "eval": {"every": steps}, "out": str(tmp_path)})
    s = train(cfg)
    if "accuracy" in bound:
        assert s["final_accuracy"] >= bound["accuracy"]
    else:
        assert s["final_perplexity"] <= bound["perplexity"]
