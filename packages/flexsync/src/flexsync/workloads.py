"""Per-workload training defaults: what a (dataset, model) pair trains with when the
configuration leaves it unsaid.

One global default (SGD at 0.01, batch 32, 300 steps) cannot train every pair: a transformer
on bytes wants Adam with warm-up, an LSTM on the 1000-word Markov text does not move from the
uniform perplexity with SGD at 0.01 (issue #23), and a ResNet on the hard image task needs a
larger rate and a decaying schedule to saturate within its budget. So each pair carries its
own optimizer, schedule, batch size, budget and evaluation cadence here; a key the user sets
always wins (``config.build_config`` merges: global defaults < these < the user's file <
``--set``).

``CHECKS`` states what each pair reaches with dense training, only its defaults and a short
budget (2 workers, ``steps`` overridden): ``tests/test_workloads.py`` runs every pair and
fails if one does not.
"""

from __future__ import annotations

import copy
from typing import Any

_IMAGE_SGD = {"optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "schedule": "cosine"}}
_TEXT_ADAM = {"optimizer": {"name": "adam", "lr": 2e-3, "schedule": "cosine",
                            "warmup_steps": 20}}

#: (dataset, model) → config keys. ``synthetic-images`` with the CNN is the original default
#: workload and keeps the global defaults (so its recorded results stay comparable).
DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("synthetic-images", "cnn"): {},
    ("synthetic-images", "resnet"): {**_IMAGE_SGD, "steps": 300},
    ("synthetic-images-hard", "resnet"): {
        **_IMAGE_SGD, "steps": 300, "batch_size": 32, "eval": {"every": 25},
        "data": {"train_size": 8000, "test_size": 4000}},
    ("synthetic-images-hard", "cnn"): {
        **_IMAGE_SGD, "steps": 300, "batch_size": 32, "eval": {"every": 25},
        "data": {"train_size": 8000, "test_size": 4000}},
    ("digits", "cnn"): {**_IMAGE_SGD, "steps": 200, "eval": {"every": 25}},
    ("digits", "resnet"): {**_IMAGE_SGD, "steps": 200, "eval": {"every": 25}},
    ("mnist", "cnn"): {**_IMAGE_SGD, "steps": 300, "eval": {"every": 50}},
    ("mnist", "resnet"): {**_IMAGE_SGD, "steps": 300, "eval": {"every": 50}},
    ("synthetic-text", "lstm"): {"optimizer": {"name": "adam", "lr": 1e-2, "schedule": "cosine",
                                               "warmup_steps": 10},
                                 "steps": 300, "batch_size": 20},
    ("synthetic-text", "transformer"): {**_TEXT_ADAM, "steps": 300, "batch_size": 16},
    ("stdlib-text", "lstm"): {**_TEXT_ADAM, "steps": 300, "batch_size": 16,
                              "data": {"seq_len": 64, "max_val_bytes": 200_000}},
    ("stdlib-text", "transformer"): {**_TEXT_ADAM, "steps": 300, "batch_size": 16,
                                     "data": {"seq_len": 64, "max_val_bytes": 200_000}},
}

#: (dataset, model) → (short budget in steps, the quality dense reaches by then with 2
#: workers and only the defaults): ``accuracy`` at least, or ``perplexity`` at most.
#: Measured here with seed 0 (2 workers): each bound sits well inside what dense reached.
CHECKS: dict[tuple[str, str], tuple[int, dict[str, float]]] = {
    ("synthetic-images", "cnn"): (150, {"accuracy": 0.08}),        # chance 0.01; seen 0.133
    ("synthetic-images", "resnet"): (60, {"accuracy": 0.03}),      # seen 0.057
    ("synthetic-images-hard", "resnet"): (60, {"accuracy": 0.40}),  # chance 0.1; seen 0.585
    ("synthetic-images-hard", "cnn"): (60, {"accuracy": 0.40}),    # seen 0.588
    ("digits", "cnn"): (60, {"accuracy": 0.60}),                   # seen 0.791
    ("digits", "resnet"): (60, {"accuracy": 0.80}),                # seen 0.975
    ("mnist", "cnn"): (60, {"accuracy": 0.80}),                    # seen 0.925
    ("mnist", "resnet"): (60, {"accuracy": 0.50}),                 # seen 0.734
    ("synthetic-text", "lstm"): (60, {"perplexity": 600.0}),       # uniform 1000; seen 346
    ("synthetic-text", "transformer"): (60, {"perplexity": 600.0}),  # seen 363
    ("stdlib-text", "lstm"): (60, {"perplexity": 60.0}),           # uniform 256; seen 32.4
    ("stdlib-text", "transformer"): (60, {"perplexity": 40.0}),    # seen 21.8
}


def defaults_for(dataset: str, model: str) -> dict[str, Any]:
    """The pair's default keys (a fresh copy; empty for a pair without entries)."""
    return copy.deepcopy(DEFAULTS.get((dataset, model), {}))
