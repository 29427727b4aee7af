"""Check, before the first collective, that every rank built the same training set-up.

Data parallelism assumes every rank holds the same model and runs the same algorithm. When
one rank was built differently (another layer width, strategy or keep fraction), the first
gradient-sized collective fails late and obscurely: an IndexError, a gloo size mismatch, or
a hang until the process-group timeout (30 minutes by default). This check runs one tiny
allgather of fixed size (one 64-bit digest per section, so it cannot itself mismatch) and,
only when the digests differ, one ``all_gather_object`` of the differing sections to name the
rank and the first difference. Every rank reaches the same verdict from the same gathered
table, so every rank raises the same :class:`~flexsync.errors.ConfigError`.

A section is any JSON-serialisable description; :func:`model_sections` describes a model and
an optimizer. A rank whose own arguments were invalid passes its error message as the
``error`` argument, so the others fail at once naming it instead of waiting for it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

from flexsync.comm import Communicator
from flexsync.errors import ConfigError


def model_sections(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """What must match across ranks about ``model`` and ``optimizer``: every parameter's
    shape, dtype and trainability by name, their order (the layout of the flattened
    gradient), every buffer's shape and dtype, and the optimizer's class and hyperparameters
    (which parameters each group holds, by position)."""
    index = {id(p): i for i, p in enumerate(model.parameters())}
    groups = [{"params": [index.get(id(p), -1) for p in g["params"]],
               **{k: v for k, v in g.items() if k not in ("params", "param_names")}}
              for g in optimizer.param_groups]
    return {
        "parameters": {n: _tensor_text(p) + ("" if p.requires_grad else " frozen")
                       for n, p in model.named_parameters()},
        "parameter order": [n for n, _ in model.named_parameters()],
        "buffers": {n: _tensor_text(b) for n, b in model.named_buffers()},
        "optimizer": {"class": type(optimizer).__name__, "param_groups": groups},
    }


def _tensor_text(t: torch.Tensor) -> str:
    return f"{tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}"


def _plain(value: Any) -> Any:
    """A JSON stand-in for a value json cannot write: a small tensor's numbers, otherwise
    the type's name (a ``repr`` may hold a memory address, which differs between processes
    started separately, as under torchrun)."""
    if torch.is_tensor(value) and value.numel() <= 16:
        return value.tolist()
    return f"<{type(value).__name__}>"


def _canonical(value: Any) -> str:
    return json.dumps(value, default=_plain)     # insertion order: the model's own order


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little", signed=True)


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    """A short description of where ``a`` and ``b`` (decoded JSON) first differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in [*a, *(k for k in b if k not in a)]:
            if a.get(k, "<missing>") != b.get(k, "<missing>"):
                return _first_difference(a.get(k, "<missing>"), b.get(k, "<missing>"),
                                         f"{path}.{k}" if path else str(k))
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path or 'length'}: {len(a)} entries versus {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path or 'value'}: {json.dumps(a)} versus {json.dumps(b)}"


def check_ranks_agree(comm: Communicator, sections: dict[str, Any],
                      error: str | None = None) -> None:
    """Raise :class:`ConfigError` on every rank unless every rank passed equal ``sections``
    (the same keys on every rank) and no rank passed an ``error``.

    The message names the lowest rank that differs from rank 0, the section and the first
    difference, e.g. ``rank 1 was built differently from rank 0: strategy: ratio: 0.01 on
    rank 0 versus 0.05 on rank 1``. Costs one unaccounted allgather of
    ``len(sections) + 1`` int64 per rank when everything matches.
    """
    if comm.world_size == 1:
        if error:
            raise ConfigError(error)
        return
    names = sorted(sections)
    texts = {k: _canonical(sections[k]) for k in names}
    own = [1 if error else 0] + [_digest(texts[k]) for k in names]
    table = comm.allgather(torch.tensor(own, dtype=torch.int64, device=comm.device),
                           accounted=False, scalable=False, tag="consistency").cpu()
    failed = [r for r in range(comm.world_size) if table[r, 0]]
    differs = [(r, names[j - 1]) for r in range(1, comm.world_size)
               for j in range(1, len(own)) if table[r, j] != table[0, j]]
    if not failed and not differs:
        return
    # Only now exchange the descriptions themselves (every rank takes this branch).
    payload = {"error": error, **{s: texts[s] for _, s in differs}}
    gathered: list[Any] = [None] * comm.world_size
    dist.all_gather_object(gathered, payload, group=comm.group)
    if failed:
        r = failed[0]
        raise ConfigError(f"rank {r} could not build its DistributedOptimizer: "
                          f"{gathered[r]['error']}")
    r, section = differs[0]
    detail = _first_difference(json.loads(gathered[0][section]),
                               json.loads(gathered[r][section]))
    raise ConfigError(f"rank {r} was built differently from rank 0: {section}: {detail} "
                      f"(rank 0 versus rank {r}); every rank must build the same model, "
                      "optimizer and strategy")
