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
                         "on_nonfinite": policy, "timeout_s": 120, "out": str(tmp_path / policy)})


def test_stop_ends_the_run_naming_the_step(tmp_path):
    with pytest.raises(WorkerFailed, match="non-finite gradients at step 4") as err:
        train(_cfg(tmp_path, "stop"), model_fn=PoisonOnce)
    log = tmp_path / "stop" / "logs" / f"rank{err.value.rank}.log"
    assert str(log) in str(err.value) and "Traceback" in log.read_text()


def test_skip_skips_the_step_on_every_rank_and_training_goes_on(tmp_path):
    s = train(_cfg(tmp_path, "skip"), model_fn=PoisonOnce)
    assert s["skipped_steps"] == 1 and s["steps"] == 10
    rows = read_metrics(tmp_path / "skip" / "metrics.jsonl")
    assert rows[4]["step_bytes"] == 0                     # no aggregation at the skipped step
    assert all(r["step_bytes"] > 0 for i, r in enumerate(rows) if i != 4)
    assert torch.isfinite(torch.tensor(s["final_test_loss"]))


class PoisonedBatchNorm(nn.Module):
    """BatchNorm in front of a linear classifier; rank 1's 5th training batch is NaN, so
    that step's forward pass writes NaN into the running statistics."""

    def __init__(self, d):
        super().__init__()
        self.bn = nn.BatchNorm1d(3 * 16 * 16)
        self.fc = nn.Linear(3 * 16 * 16, d.num_classes)
        self.calls = 0

    def forward(self, x):
        x = x.flatten(1)
        if self.training:
            self.calls += 1
            if self.calls == 5 and dist.get_rank() == 1:
                x = x * float("nan")
        return self.fc(self.bn(x))


def test_a_skipped_step_leaves_batchnorm_statistics_as_they_were(tmp_path):
    s = train(_cfg(tmp_path, "skip"), model_fn=PoisonedBatchNorm)
    assert s["skipped_steps"] == 1
    # NaN running statistics would make every evaluation NaN
    assert torch.isfinite(torch.tensor(s["final_test_loss"])) and "nonfinite_eval" not in s


class AlwaysNaN(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(3 * 16 * 16, d.num_classes)

    def forward(self, x):
        return self.fc(x.flatten(1)) * float("nan")


def test_a_run_whose_every_step_was_skipped_fails_clearly(tmp_path):
    with pytest.raises(WorkerFailed, match="every one of the 10 steps was skipped"):
        train(_cfg(tmp_path, "skip"), model_fn=AlwaysNaN)


class NaNWhenEvaluated(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(3 * 16 * 16, d.num_classes)

    def forward(self, x):
        out = self.fc(x.flatten(1))
        return out if self.training else out * float("nan")


def test_a_non_finite_evaluation_is_flagged_in_the_summary(tmp_path):
    s = train(_cfg(tmp_path, "skip"), model_fn=NaNWhenEvaluated)
    assert s["nonfinite_eval"] is True and s["skipped_steps"] == 0
