"""Data-dependent configuration checks run before any worker starts (flexsync.preflight)."""

import pytest
import torch

import flexsync
from flexsync.config import ConfigError, build_config
from flexsync.data import Dataset
from flexsync.preflight import check_fits


def _data(n: int, task: str = "classification") -> Dataset:
    x = torch.randn(n, 1, 4, 4)
    y = torch.arange(n) % 4
    return Dataset("tiny", x, y, x[:8], y[:8], num_classes=4, task=task)


def test_more_workers_than_the_data_can_split_is_a_config_error_naming_the_keys():
    cfg = build_config({"workers": 8, "batch_size": 32})
    with pytest.raises(ConfigError, match=r"workers \(8\) and batch_size \(32\) do not fit "
                                          r"dataset 'tiny' \(100 training samples"):
        check_fits(cfg, _data(100))
    with pytest.raises(ConfigError, match="use at most 3 workers"):
        check_fits(cfg, _data(100))
    check_fits(build_config({"workers": 3, "batch_size": 32}), _data(100))     # fits


@pytest.mark.parametrize("partition", ["defdp", "seldp", "noniid"])
def test_every_partition_is_checked_as_the_loop_builds_it(partition):
    cfg = build_config({"workers": 4, "batch_size": 30, "data": {"partition": partition}})
    with pytest.raises(ConfigError, match=f"data.partition '{partition}'"):
        check_fits(cfg, _data(100))


def test_streams_only_need_non_empty_shards():
    cfg = build_config({"workers": 4, "batch_size": 64, "stream": {"rates": [1, 2, 3, 4]}})
    check_fits(cfg, _data(100))                   # shard 25 < batch 64: a stream cycles
    with pytest.raises(ConfigError, match="cannot be split over 4 workers"):
        check_fits(cfg, _data(3))


def test_noniid_needs_a_classification_dataset():
    cfg = build_config({"workers": 2, "data": {"partition": "noniid"}})
    with pytest.raises(ConfigError, match="needs a classification dataset"):
        check_fits(cfg, _data(100, task="language"))


def test_train_refuses_before_starting_workers():
    with pytest.raises(ConfigError, match=r"workers \(8\)"):
        flexsync.train({"workers": 8, "batch_size": 32, "steps": 1, "progress": False},
                       dataset=_data(100), model_fn=lambda d: torch.nn.Flatten())
