"""Checkpoints: everything a run needs to continue exactly, one file per rank, each one
checked before it is trusted.

A checkpoint directory ``<run>/checkpoints/step-<N>/`` holds ``rank<r>.pt`` for every rank and
``meta.json``. A rank file is a small header (rank, world size, run id, step, the SHA-256 of
its payload) around the payload: the serialized state (model, optimizer, strategy, sampler,
clock, loop state and RNG states). ``meta.json`` (step, world size, run id, strategy, a
fingerprint of the training-relevant config) lists every rank file with the SHA-256 of the
whole file. Files are loaded with ``torch.load(weights_only=True)``, so a checkpoint can carry
tensors and plain Python values only; :func:`check_plain` rejects anything else at save time
with the offending key.

Writes are atomic: each file is written to a temporary name, flushed to disk and renamed;
the checkpoint counts only once rank 0 renames ``meta.json`` into place, after every rank's
file is in place. A reader (:func:`verify`, :func:`load`) refuses, with one line naming the
file, a checkpoint whose metadata does not match the run (other world size, strategy, data or
model), whose meta.json is missing, or whose rank files are missing, unreadable (truncated,
random bytes), swapped, copied from another rank, or from another run.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

_PLAIN = (int, float, bool, str, bytes, type(None), torch.Tensor)
FORMAT = 2          # rank files with a header and a checksummed payload


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
                         "target", "timeout_s", "stall_timeout_s", "logging")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def step_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step-{step:08d}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)               # never a half-written file under the real name


def save(run_dir: Path, step: int, rank: int, world: int, state: dict[str, Any],
         run_id: str = "") -> str:
    """Write this rank's file (atomically) and return its SHA-256. Every rank calls it, then
    rank 0 calls :func:`commit` with every rank's checksum: a checkpoint counts only once
    every rank's file is in place."""
    check_plain(state)
    d = step_dir(run_dir, step)
    d.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    out = io.BytesIO()
    torch.save({"format": FORMAT, "rank": rank, "world_size": world, "run_id": run_id,
                "step": step, "checksum": hashlib.sha256(payload).hexdigest(),
                "payload": payload}, out)
    data = out.getvalue()
    _write_atomic(d / f"rank{rank}.pt", data)
    return hashlib.sha256(data).hexdigest()


def commit(run_dir: Path, step: int, world: int, meta: dict[str, Any],
           files: dict[str, str], keep: int = 2) -> None:
    """Mark the step's checkpoint complete (meta.json, listing every rank file with its
    checksum) and prune older ones (rank 0 only, after every rank's :func:`save` returned)."""
    d = step_dir(run_dir, step)
    body = {**meta, "step": step, "world_size": world, "format": FORMAT, "files": files}
    _write_atomic(d / "meta.json", json.dumps(body, indent=1).encode())
    older = sorted((run_dir / "checkpoints").glob("step-*"))[:-keep] if keep > 0 else []
    for old in older:
        if old.name < d.name:           # never a newer one
            shutil.rmtree(old, ignore_errors=True)


def latest(run_dir: Path) -> Path | None:
    """The newest checkpoint directory that is complete (has meta.json); a newer one without
    it was interrupted while being written and is passed over."""
    for d in sorted((Path(run_dir) / "checkpoints").glob("step-*"), reverse=True):
        if (d / "meta.json").is_file():
            return d
    return None


def incomplete(run_dir: Path) -> list[Path]:
    """Checkpoint directories newer than :func:`latest` (interrupted writes)."""
    done = latest(run_dir)
    return [d for d in sorted((Path(run_dir) / "checkpoints").glob("step-*"))
            if done is None or d.name > done.name]


def read_meta(ckpt: Path) -> dict[str, Any]:
    """The checkpoint's meta.json; refused when missing, unreadable or of an older format."""
    path = ckpt / "meta.json"
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (the checkpoint is incomplete: it was "
                              "interrupted while being written, or the file was removed)")
    try:
        meta = json.loads(path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: unreadable ({e})") from None
    if meta.get("format") != FORMAT or not isinstance(meta.get("files"), dict):
        raise CheckpointError(f"{path}: written by an older flexsync without checksums; "
                              "it cannot be verified (start a new run)")
    return meta


def _open_rank_file(ckpt: Path, rank: int, meta: dict[str, Any]) -> dict[str, Any]:
    """Load rank ``rank``'s file and check it against ``meta``: header and checksums."""
    name = f"rank{rank}.pt"
    path = ckpt / name
    if name not in meta["files"]:
        raise CheckpointError(f"{path}: not listed in meta.json")
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        box = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(box, dict) or box.get("format") != FORMAT:
            raise ValueError("no flexsync checkpoint header")
    except Exception as e:      # truncated, random bytes, not a checkpoint: refuse clearly
        raise CheckpointError(f"{path}: not a readable checkpoint file (truncated or "
                              f"corrupt: {type(e).__name__})") from None
    if box.get("run_id") != meta.get("run_id"):
        raise CheckpointError(f"{path}: belongs to run {box.get('run_id')!r}, this checkpoint "
                              f"to run {meta.get('run_id')!r} (a file from another run)")
    if box.get("rank") != rank or box.get("world_size") != meta["world_size"]:
        raise CheckpointError(f"{path}: holds rank {box.get('rank')} of "
                              f"{box.get('world_size')}, expected rank {rank} of "
                              f"{meta['world_size']} (files swapped or copied)")
    if box.get("step") != meta.get("step"):
        raise CheckpointError(f"{path}: is from step {box.get('step')}, meta.json says step "
                              f"{meta.get('step')} (a file from another checkpoint)")
    if sha256_file(path) != meta["files"][name] \
            or hashlib.sha256(box["payload"]).hexdigest() != box.get("checksum"):
        raise CheckpointError(f"{path}: checksum does not match meta.json (the file was "
                              "modified or corrupted)")
    return box


def verify(ckpt: Path, world: int, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check the whole checkpoint before any worker starts: meta.json, every rank file's
    header and checksum, and (given ``meta``) that it fits this run. Returns its meta.json."""
    saved = read_meta(ckpt)
    _check_fits(ckpt, saved, world, meta)
    for r in range(world):
        _open_rank_file(ckpt, r, saved)
    extra = set(saved["files"]) - {f"rank{r}.pt" for r in range(world)}
    if extra:
        raise CheckpointError(f"{ckpt / 'meta.json'}: lists unexpected files {sorted(extra)}")
    return saved


def _check_fits(ckpt: Path, saved: dict[str, Any], world: int,
                meta: dict[str, Any] | None) -> None:
    if saved.get("world_size") != world:
        raise CheckpointError(f"{ckpt} was written by {saved.get('world_size')} workers; this "
                              f"run has {world} (resume with the same world size)")
    for key in ("strategy", "fingerprint"):
        if meta is not None and saved.get(key) != meta.get(key):
            raise CheckpointError(
                f"{ckpt} does not match this run: {key} {saved.get(key)!r} != "
                f"{meta.get(key)!r} (the model, data or strategy settings changed)")


def load(ckpt: Path, rank: int, world: int, meta: dict[str, Any]) -> dict[str, Any]:
    """This rank's state from ``ckpt``, after checking meta.json, the file's header (rank,
    world size, run id, step) and both checksums."""
    saved = read_meta(ckpt)
    _check_fits(ckpt, saved, world, meta)
    box = _open_rank_file(ckpt, rank, saved)
    try:
        return torch.load(io.BytesIO(box["payload"]), map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{ckpt / f'rank{rank}.pt'}: cannot load its state "
                              f"({type(e).__name__}: {e})") from None
