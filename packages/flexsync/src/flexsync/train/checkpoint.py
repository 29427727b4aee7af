"""Checkpoints: everything a run needs to continue exactly, one file per rank.

A checkpoint directory ``<run>/checkpoints/step-<N>/`` holds ``rank<r>.pt`` for every rank
(model, optimizer, strategy, sampler, clock, loop state and RNG states) and ``meta.json``
(step, world size, strategy, a fingerprint of the training-relevant config). Files are loaded
with ``torch.load(weights_only=True)``, so a checkpoint can carry tensors and plain Python
values only; :func:`check_plain` rejects anything else at save time with the offending key.
A checkpoint whose metadata does not match the run (other world size, strategy, data or
model) or whose files are missing or unreadable is refused with a message.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

_PLAIN = (int, float, bool, str, bytes, type(None), torch.Tensor)


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or does not fit this run."""


def check_plain(obj: Any, path: str = "state") -> None:
    """Raise unless ``obj`` is made of tensors, numbers, strings, None, lists, tuples and
    dicts only (what ``weights_only`` loading accepts)."""
    if isinstance(obj, _PLAIN):
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, int | float | str | bool):
                raise CheckpointError(f"{path}: key {k!r} of type {type(k).__name__}")
            check_plain(v, f"{path}.{k}")
        return
    if isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            check_plain(v, f"{path}[{i}]")
        return
    raise CheckpointError(f"{path}: cannot checkpoint a {type(obj).__name__}; strategies' "
                          "state_dict must return tensors and plain values")


def fingerprint(config: dict[str, Any]) -> str:
    """Hash of the config keys that define the training computation (not its length,
    evaluation, output or checkpoint cadence, which a resume may change)."""
    keep = {k: v for k, v in config.items()
            if k not in ("steps", "epochs", "out", "eval", "progress", "checkpoint",
                         "target", "timeout_s")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def step_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step-{step:08d}"


def save(run_dir: Path, step: int, rank: int, world: int, state: dict[str, Any]) -> Path:
    """Write this rank's file (atomically). Every rank calls it, then all barrier, then rank 0
    calls :func:`commit`: a checkpoint counts only once every rank's file is in place."""
    check_plain(state)
    d = step_dir(run_dir, step)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".rank{rank}.pt.tmp"
    torch.save(state, tmp)
    os.replace(tmp, d / f"rank{rank}.pt")          # never a half-written file
    return d


def commit(run_dir: Path, step: int, world: int, meta: dict[str, Any], keep: int = 2) -> None:
    """Mark the step's checkpoint complete (meta.json) and prune older ones (rank 0 only,
    after every rank's :func:`save` returned)."""
    d = step_dir(run_dir, step)
    tmp = d / ".meta.json.tmp"
    tmp.write_text(json.dumps({**meta, "step": step, "world_size": world}))
    os.replace(tmp, d / "meta.json")
    older = sorted((run_dir / "checkpoints").glob("step-*"))[:-keep] if keep > 0 else []
    for old in older:
        shutil.rmtree(old, ignore_errors=True)


def latest(run_dir: Path) -> Path | None:
    """The newest checkpoint directory that is complete (has meta.json)."""
    for d in sorted((Path(run_dir) / "checkpoints").glob("step-*"), reverse=True):
        if (d / "meta.json").is_file():
            return d
    return None


def load(ckpt: Path, rank: int, world: int, meta: dict[str, Any]) -> dict[str, Any]:
    try:
        saved = json.loads((ckpt / "meta.json").read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{ckpt}: unreadable meta.json ({e})") from None
    if saved.get("world_size") != world:
        raise CheckpointError(f"{ckpt} was written by {saved.get('world_size')} workers; this "
                              f"run has {world} (resume with the same world size)")
    for key in ("strategy", "fingerprint"):
        if saved.get(key) != meta.get(key):
            raise CheckpointError(
                f"{ckpt} does not match this run: {key} {saved.get(key)!r} != "
                f"{meta.get(key)!r} (the model, data or strategy settings changed)")
    path = ckpt / f"rank{rank}.pt"
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:      # corrupt, truncated, or not a checkpoint: refuse clearly
        raise CheckpointError(f"{path}: cannot load checkpoint ({type(e).__name__}: {e})"
                              ) from None
