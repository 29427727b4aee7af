"""The DDP baselines (PyTorch's own hooks) are charged exactly what their hooks send: the
same per-step accounting as flexsync's strategies, no more (docs/methods.md §0.5)."""

from flexsync import build_config, train
from flexsync.train.metrics import read_metrics

BASE = {"workers": 2, "steps": 4, "progress": False, "batch_size": 16,
        "eval": {"every": 2}, "data": {"classes": 10, "train_size": 400, "test_size": 100},
        "network": {"kind": "modeled", "alpha": "1ms", "bandwidth": "100mbit"}}


def _comm(tmp_path, name, strategy):
    train(build_config({**BASE, "strategy": strategy, "out": str(tmp_path / name)}))
    return [r["comm"] for r in read_metrics(tmp_path / name / "metrics.jsonl")]


def test_the_fp16_hook_is_charged_its_half_size_gradient_allreduce_only(tmp_path):
    """Before the fix, flexsync's own unaccounted collectives (the per-step non-finite flag,
    the evaluation's metric sums) went through the patched ``dist.all_reduce`` and were
    charged to the DDP baselines alone: one extra α-bound collective per step."""
    dense = _comm(tmp_path, "dense", {"name": "dense"})
    fp16 = _comm(tmp_path, "fp16", {"name": "ddp", "hook": "fp16"})
    for d, h in zip(dense, fp16, strict=True):
        assert [kind for kind, *_ in h] == ["allreduce"]
        assert h[0][2] == d[0][2] // 2           # fp16 values, the same gradient
