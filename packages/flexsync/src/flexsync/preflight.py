"""Checks that need the dataset, run once before any worker starts.

A configuration can be valid on its own and still not fit the data: more workers than the
training set can be split into, or shards smaller than one batch. Inside the workers that
surfaces as one traceback per rank; here it is one :class:`~flexsync.config.ConfigError`
that names the keys to change.
"""

from __future__ import annotations

import os

from flexsync.config import Config, ConfigError
from flexsync.data import Dataset
from flexsync.train.assemble import build_sampler, own_batch


def world_size_for(cfg: Config) -> int:
    """The number of workers a run will have: torchrun's WORLD_SIZE, else ``workers``."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return int(os.environ["WORLD_SIZE"])
    return cfg.workers


def check_fits(cfg: Config, data: Dataset, world_size: int | None = None) -> None:
    """Raise :class:`ConfigError` unless every one of ``world_size`` workers gets at least
    one full batch per epoch under ``data.partition``.

    It builds rank 0's sampler exactly as the training loop will; every partition gives all
    ranks equal shards (DefDP, SelDP chunks, non-IID shards trimmed to the smallest), so rank
    0 stands for all of them. With ``stream`` the shards only need to be non-empty (a stream
    cycles through its shard).
    """
    world = world_size_for(cfg) if world_size is None else world_size
    batch = own_batch(cfg, world)
    n = len(data.train_y)
    if cfg.data.partition == "noniid" and data.task != "classification":
        raise ConfigError(f"data.partition 'noniid' needs a classification dataset, and "
                          f"{data.name!r} is a {data.task} dataset")
    try:
        build_sampler(cfg, data, world, 0)
    except ValueError as e:
        raise ConfigError(
            f"workers ({world}) and batch_size ({batch}) do not fit dataset {data.name!r} "
            f"({n} training samples, data.partition {cfg.data.partition!r}): {e}. Each worker "
            f"needs at least batch_size samples: use at most {max(1, n // max(1, batch))} "
            f"workers or a smaller batch_size") from None
