"""TensorBoard logging, read back with tensorboard's own event reader.

Specification:

* a config with ``logging: {tensorboard: DIR}`` writes event files in which every step's
  ``loss`` and ``bytes_sent`` (and the rest of the numeric metrics) appear at their steps,
  matching ``metrics.jsonl``;
* ``flexsync.log_to(writer)`` makes DistributedOptimizer log its steps (bytes, the strategy's
  signals, the time split) to the user's SummaryWriter, beside what the user logs there;
* a run through ``flexsync.train`` with the user's dataset and model records their names in
  the run's ``config.yaml``, and without a terminal the loop prints progress lines.
"""

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import flexsync
from flexsync import build_config, train
from flexsync.data.synthetic import synthetic_images
from flexsync.train.metrics import read_metrics


def _scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


class TinyNet(nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    """One 2-worker run with the user's dataset and model, TensorBoard on, no terminal."""
    out = tmp_path_factory.mktemp("run")
    data = synthetic_images(seed=1, classes=5, train_size=400, test_size=100, image_size=8)
    data.name = "my-shapes"
    cfg = build_config({"workers": 2, "steps": 6, "eval": {"every": 3},
                        "strategy": {"name": "topk", "ratio": 0.1},
                        "logging": {"tensorboard": str(out / "tb"), "progress_every_s": 1e-9}})
    summary = train(cfg, dataset=data, model_fn=lambda d: TinyNet(d.num_classes), out=out)
    return out, summary


def test_config_logging_writes_loss_and_bytes_per_step(user_run):
    out, _ = user_run
    scalars = _scalars(out / "tb")
    rows = read_metrics(out / "metrics.jsonl")
    for key in ("loss", "bytes_sent", "step_bytes", "modeled_time", "ratio"):
        assert [s for s, _ in scalars[key]] == [r["step"] for r in rows], key
        assert [v for _, v in scalars[key]] == pytest.approx([r[key] for r in rows], rel=1e-6)
    assert [s for s, _ in scalars["test_accuracy"]] == [3, 6]
    assert scalars["bytes_sent"][-1][1] > scalars["bytes_sent"][0][1] > 0


def test_the_config_yaml_records_the_users_dataset_and_model(user_run):
    out, _ = user_run
    written = yaml.safe_load((out / "config.yaml").read_text())
    assert written["dataset"] == "user:my-shapes" and written["model"] == "user:TinyNet"
    assert "data" not in written and written["strategy"]["name"] == "topk"


def test_progress_lines_without_a_terminal(tmp_path, capfd):
    cfg = build_config({"workers": 1, "steps": 3, "eval": {"every": 3}, "progress": True,
                        "data": {"classes": 5, "train_size": 200, "test_size": 50},
                        "logging": {"progress_every_s": 1e-9}, "out": str(tmp_path / "p")})
    train(cfg)
    err = capfd.readouterr().err
    assert "train: step 1/3 (33%)" in err and "train: step 3/3 (100%)" in err
    assert "loss=" in err


def _wrapper_worker(log_dir: str) -> int:
    from torch.utils.tensorboard import SummaryWriter

    rank = dist.get_rank()
    writer = SummaryWriter(log_dir) if rank == 0 else None
    flexsync.log_to(writer)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = flexsync.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model,
                                        strategy="artopk", ratio=0.2)
    for step in range(4):
        g = torch.Generator().manual_seed(10 * step + rank)
        opt.zero_grad()
        loss = F.cross_entropy(model(torch.randn(8, 6, generator=g)),
                               torch.randint(3, (8,), generator=g))
        loss.backward()
        opt.step()
        if writer is not None:
            writer.add_scalar("loss", loss.item(), opt.num_steps)
    if writer is not None:
        writer.close()
    flexsync.log_to(None)
    return opt.comm.total_bytes


def test_log_to_records_the_wrappers_steps(run_workers, tmp_path):
    sent, _ = run_workers(_wrapper_worker, 2, str(tmp_path / "tb"))
    scalars = _scalars(tmp_path / "tb")
    assert [s for s, _ in scalars["loss"]] == [1, 2, 3, 4]
    assert [s for s, _ in scalars["flexsync/bytes_sent"]] == [1, 2, 3, 4]
    assert scalars["flexsync/bytes_sent"][-1][1] == sent
    assert {"flexsync/ratio", "flexsync/gain", "flexsync/aggregate_s", "flexsync/lr"} <= set(
        scalars)
