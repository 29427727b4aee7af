"""Non-finite gradients on one rank are seen by every rank: the run stops (default) or every
rank skips the step, so no collective is left unmatched."""

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn

from flexsync import WorkerFailed, build_config, train
from flexsync.train.metrics import read_metrics


class PoisonOnce(nn.Module):
    """A linear classifier whose output on rank 1 is NaN at its 5th training forward."""

    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(3 * 16 * 16, d.num_classes)
        self.calls = 0

    def forward(self, x):
        out = self.fc(x.flatten(1))
        if self.training:
            self.calls += 1
            if self.calls == 5 and dist.get_rank() == 1:
                out = out * float("nan")
        return out


def _cfg(tmp_path, policy):
    return build_config({"workers": 2, "steps": 10, "progress": False, "eval": {"every": 10},
                         "data": {"classes": 10, "train_size": 800, "test_size": 100},
                         "on_nonfinite": policy, "timeout_s": 30, "out": str(tmp_path / policy)})


def test_stop_ends_the_run_naming_the_step(tmp_path, capfd):
    with pytest.raises(WorkerFailed):
        train(_cfg(tmp_path, "stop"), model_fn=PoisonOnce)
    assert "non-finite gradients at step 4" in capfd.readouterr().err


def test_skip_skips_the_step_on_every_rank_and_training_goes_on(tmp_path):
    s = train(_cfg(tmp_path, "skip"), model_fn=PoisonOnce)
    assert s["skipped_steps"] == 1 and s["steps"] == 10
    rows = read_metrics(tmp_path / "skip" / "metrics.jsonl")
    assert rows[4]["step_bytes"] == 0                     # no aggregation at the skipped step
    assert all(r["step_bytes"] > 0 for i, r in enumerate(rows) if i != 4)
    assert torch.isfinite(torch.tensor(s["final_test_loss"]))
