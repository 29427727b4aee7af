"""The wrapper's dense path overlapped with backward (issue 20; ``integrations/overlap.py``),
on real gloo workers (one launch, world 2).

Specification: with ``overlap=True`` (the default) the dense strategy's result is the
non-overlapped one. With two ranks an allreduce adds two numbers per entry, whatever the
bucket layout, so the parameters are bit-identical; the bytes accounted per step are the same.
Checked on: plain steps; gradient accumulation (4 backward passes per step, learnt); a
parameter only one rank uses; gradients clipped in place before ``step()`` (the sent buckets
are stale: every rank falls back to aggregating after backward); a non-finite gradient on one
rank (skipped on every rank; its buckets went out during backward, so the overlapped path
sends that step's bytes, as DDP does); both GradScaler recipes (the overlap stops). And that
communication really starts during backward: when the first layer's backward begins, buckets
of later layers are on their way.
"""

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from flexsync import ConfigError, DistributedOptimizer
from flexsync.integrations.overlap import cut_buckets
from flexsync.strategies.grads import flatten_params

STEPS, MICRO = 4, 4
BUCKET_MB = 0.004          # a few layers per bucket: several buckets


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.ModuleList([nn.Linear(8, 32)] + [nn.Linear(32, 32) for _ in range(4)]
                                    + [nn.Linear(32, 3)])
        self.extra = nn.Linear(32, 32)       # used by rank 0 only in the "unused" case

    def forward(self, x: torch.Tensor, use_extra: bool = False) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = torch.tanh(layer(x))
            if use_extra and layer is self.layers[2]:
                x = x + self.extra(x)
        return self.layers[-1](x)


def _batch(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 * step + rank)
    return (torch.randn(MICRO * 4, 8, dtype=torch.float64, generator=g),
            torch.randint(3, (MICRO * 4,), generator=g))


def _train(case: str, overlap: bool) -> dict:
    rank = dist.get_rank()
    model = _Net().double()
    opt = DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                               model, strategy="dense", overlap=overlap,
                               overlap_bucket_mb=BUCKET_MB, on_nonfinite="skip")
    launched_at_first_layer = []
    model.layers[0].register_full_backward_pre_hook(
        lambda *_: launched_at_first_layer.append(
            0 if opt._overlap is None else opt._overlap.next_launch))
    for step in range(STEPS):
        x, y = _batch(rank, step)
        opt.zero_grad()
        if case == "accumulate":
            for xs, ys in zip(x.split(4), y.split(4), strict=True):
                (F.cross_entropy(model(xs), ys) / MICRO).backward()
        else:
            F.cross_entropy(model(x, use_extra=case == "unused" and rank == 0), y).backward()
        if case == "clip":
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05)   # this rank's own
        if case == "nonfinite" and step == 2 and rank == 1:
            model.layers[3].weight.grad[0, 0] = float("inf")
        opt.step()
    ov = opt._overlap
    out = {"params": flatten_params(list(model.parameters())), "bytes": opt.comm.total_bytes,
           "skipped": opt.skipped_steps, "signals": opt.signals(),
           "launched": launched_at_first_layer,
           "overlapped": None if ov is None else ov.overlapped_steps,
           "stale": None if ov is None else ov.stale_steps,
           "buckets": None if ov is None else len(ov.buckets or ())}
    opt.close()
    return out


CASES = ("plain", "accumulate", "unused", "clip", "nonfinite")


def _worker() -> dict:
    return {case: (_train(case, True), _train(case, False)) for case in CASES}


@pytest.fixture(scope="module")
def results():
    from flexsync.launch import run_local

    return run_local(_worker, 2, (), backend="gloo", timeout_s=60, deadline_s=120)


@pytest.mark.parametrize("case", CASES)
def test_overlapped_dense_equals_the_non_overlapped_path(results, case):
    for r in results:
        on, off = r[case]
        assert torch.equal(on["params"], off["params"])
        # the same bytes per step, except: stale steps send twice (clip), and a skipped
        # step's buckets went out during backward (the non-overlapped path sends nothing)
        step_bytes = off["bytes"] // (STEPS - on["skipped"])
        extra = {"clip": STEPS - 1, "nonfinite": 1}.get(case, 0)
        assert on["bytes"] == off["bytes"] + extra * step_bytes
        assert on["skipped"] == off["skipped"] == (1 if case == "nonfinite" else 0)
        assert off["overlapped"] is None
        assert on["buckets"] > 2
    assert torch.equal(results[0][case][0]["params"], results[1][case][0]["params"])


@pytest.mark.parametrize("case", ["plain", "accumulate", "unused"])
def test_buckets_are_sent_from_backward_after_the_learning_step(results, case):
    for r in results:
        on, _ = r[case]
        assert on["overlapped"] == STEPS - 1 and on["stale"] == 0
        assert on["signals"]["buckets"] == on["buckets"]
        # the first layer's backward starts after later layers' buckets were started
        passes = MICRO if case == "accumulate" else 1
        assert on["launched"][:passes] == [0] * passes                  # the learning step
        last_passes = on["launched"][-passes:]
        assert last_passes[-1] > 0 and all(n == 0 for n in last_passes[:-1])


def test_grads_changed_after_backward_fall_back_on_every_rank(results):
    for r in results:
        on, _ = r["clip"]
        assert on["stale"] == STEPS - 1 and on["overlapped"] == 0


def _amp(overlap: bool, clip: bool) -> dict:
    """GradScaler recipes: ``scaler.step(opt)``, or ``unscale_``, ``synchronize``, clip,
    ``step`` (``unscale_`` rescales in place without bumping ``_version``)."""
    rank = dist.get_rank()
    model = _Net()
    opt = DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model,
                               strategy="dense", overlap=overlap, overlap_bucket_mb=BUCKET_MB)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)
    for step in range(STEPS):
        x, y = _batch(rank, step)
        opt.zero_grad()
        scaler.scale(F.cross_entropy(model(x.float()), y)).backward()
        if clip:
            scaler.unscale_(opt)
            opt.synchronize()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            with opt.skip_synchronize():
                scaler.step(opt)
        else:
            scaler.step(opt)
        scaler.update()
    out = {"params": flatten_params(list(model.parameters())), "stopped": opt._overlap is None}
    opt.close()
    return out


def _amp_worker() -> dict:
    return {clip: (_amp(True, clip), _amp(False, clip)) for clip in (False, True)}


def test_a_grad_scaler_stops_the_overlap_on_every_rank_and_changes_nothing(run_workers):
    for r in run_workers(_amp_worker, 2):
        for clip in (False, True):
            on, off = r[clip]
            assert on["stopped"]
            assert torch.equal(on["params"], off["params"]), clip


def test_cut_buckets_keeps_order_and_caps():
    assert cut_buckets([3, 2, 1, 0], [4, 4, 8, 4], cap=8, first_cap=4) == [[3], [2], [1, 0]]
    assert cut_buckets([0, 1, 2], [4, 4, 4], cap=8, first_cap=8) == [[0, 1], [2]]
    assert cut_buckets([0, 1], [100, 4], cap=8, first_cap=8) == [[0], [1]]


@pytest.mark.parametrize("kwargs, match", [({"overlap": 1}, "overlap must be True or False"),
                                           ({"overlap_bucket_mb": 0}, "overlap_bucket_mb")])
def test_overlap_arguments_are_validated(kwargs, match):
    model = nn.Linear(2, 2)
    with pytest.raises(ConfigError, match=match):
        DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model, **kwargs)
