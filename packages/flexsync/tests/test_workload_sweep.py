"""Every registered strategy runs on the workloads of issue #23 (the hard image task with the
ResNet, the standard-library text with the transformer) at 2, 4 and 8 workers: a few steps
each, ending with a finite training loss and a finite evaluation. (Replica identity and
exact numerics per strategy are specified elsewhere: tests/reference, tests/strategies.)

Slow (78 short multi-process runs, ~45 s each on a loaded 2-core machine):
``python -m pytest -m slow tests/test_workload_sweep.py``.
"""

from __future__ import annotations

import math

import pytest

from flexsync import build_config, train
from flexsync.strategies import STRATEGIES

pytestmark = pytest.mark.slow

WORKLOADS = {
    "resnet-hard": {"dataset": "synthetic-images-hard", "model": "resnet",
                    "data": {"train_size": 512, "test_size": 128}},
    "transformer": {"dataset": "stdlib-text", "model": "transformer", "model_size": "xs",
                    "data": {"seq_len": 32, "max_val_bytes": 20_000}},
}
STEPS = 4


def _strategy_keys(name: str, workers: int) -> dict:
    keys: dict = {"strategy": {"name": name}}
    if name == "scadles":
        keys["stream"] = {"rates": [40.0 * (1 + r % 2) for r in range(workers)], "tau": 0.25}
    return keys


@pytest.mark.parametrize("workers", [2, 4, 8])
@pytest.mark.parametrize("workload", sorted(WORKLOADS))
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_runs_on_the_new_workloads(name, workload, workers, tmp_path):
    cfg = build_config({
        **WORKLOADS[workload], **_strategy_keys(name, workers), "workers": workers,
        "steps": STEPS, "batch_size": 8, "progress": False, "eval": {"every": STEPS},
        "timeout_s": 300,
        "network": {"kind": "modeled", "alpha": "1ms", "bandwidth": "100mbit"},
        "out": str(tmp_path / "run"),
    })
    s = train(cfg)
    assert math.isfinite(s["final_loss"])
    quality = s.get("final_accuracy", s.get("final_perplexity"))
    assert quality is not None and math.isfinite(quality)
