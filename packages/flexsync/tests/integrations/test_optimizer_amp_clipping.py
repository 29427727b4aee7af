"""AMP and clipping through DistributedOptimizer (world 2, one launch per test).

Specification:

* under ``torch.amp.GradScaler``, an inf in one rank's gradients skips that step on every
  rank, the replicas stay bit-identical, and training resumes at the next step, both with
  the plain recipe (``scaler.step(opt)``) and with clipping (``scaler.unscale_(opt);
  opt.synchronize(); clip; with opt.skip_synchronize(): scaler.step(opt)``), for a dense,
  a top-k (error feedback), a local-update (SelSync) and the DDP (aggregates inside
  ``backward()``) strategy;
* after ``opt.synchronize()`` the gradients are the combined ones: ``clip_grad_norm_``
  returns the norm of the ranks' mean gradient on every rank, and the update uses the
  clipped gradient;
* ``step()`` inside ``skip_synchronize()`` without a prior ``synchronize()`` is refused on
  every rank, and non-finite gradients outside a GradScaler stop every rank naming the rank.
"""

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from flexsync import DistributedOptimizer
from flexsync.strategies.grads import flatten_grads, flatten_params

STEPS, BAD_STEP = 5, 2
STRATEGIES = [("dense", {}), ("topk", {"ratio": 0.2}), ("selsync", {"delta": 0.0}),
              ("ddp", {"hook": "allreduce"})]


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def _loss(model: nn.Module, rank: int, step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(100 * step + rank)
    x, y = torch.randn(8, 6, generator=g), torch.randint(3, (8,), generator=g)
    return F.cross_entropy(model(x), y)


def _amp_run(strategy: str, options: dict, clip: bool) -> dict:
    rank = dist.get_rank()
    model = _model()
    opt = DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                               model, strategy=strategy, **options)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)
    trace = []
    for step in range(STEPS):
        opt.zero_grad()
        loss = _loss(opt.model, rank, step)
        if step == BAD_STEP and rank == 1:
            loss = loss * float("inf")                         # this rank's batch overflowed
        scaler.scale(loss).backward()
        if clip:
            scaler.unscale_(opt)
            opt.synchronize()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            with opt.skip_synchronize():
                scaler.step(opt)
        else:
            scaler.step(opt)
        scaler.update()
        trace.append(flatten_params(list(model.parameters())))
    opt.close()
    return {"trace": trace, "skipped": opt.skipped_steps}


def _amp_worker() -> dict:
    return {(name, clip): _amp_run(name, options, clip)
            for name, options in STRATEGIES for clip in (False, True)}


def test_an_inf_on_one_rank_skips_the_step_on_every_rank(run_workers):
    r0, r1 = run_workers(_amp_worker, 2, deadline_s=90)
    for key in r0:
        a, b = r0[key]["trace"], r1[key]["trace"]
        for step in range(STEPS):
            assert torch.equal(a[step], b[step]), f"{key}: replicas differ at step {step}"
        assert torch.equal(a[BAD_STEP], a[BAD_STEP - 1]), f"{key}: the bad step was applied"
        assert not torch.equal(a[BAD_STEP + 1], a[BAD_STEP]), f"{key}: training stopped"
        assert r0[key]["skipped"] == r1[key]["skipped"] == 1, key


def _clip_worker() -> dict:
    rank = dist.get_rank()
    model = _model()
    params = list(model.parameters())
    opt = DistributedOptimizer(torch.optim.SGD(params, lr=0.1), model, strategy="dense")
    _loss(model, rank, 0).backward()
    local = flatten_grads(params)
    mean = local.clone()
    dist.all_reduce(mean)
    mean /= dist.get_world_size()
    before = flatten_params(params)
    opt.synchronize()
    norm = float(torch.nn.utils.clip_grad_norm_(params, 0.1))
    clipped = flatten_grads(params)
    with opt.skip_synchronize():
        opt.step()
    out = {"norm": norm, "mean norm": float(mean.norm()), "local norm": float(local.norm()),
           "update": before - flatten_params(params), "clipped": clipped}
    # Misuse: step() inside skip_synchronize() with nothing synchronized.
    _loss(model, rank, 1).backward()
    try:
        with opt.skip_synchronize():
            opt.step()
    except RuntimeError as e:
        out["misuse"] = str(e)
    # Non-finite gradients on rank 1 outside a GradScaler: the default policy stops.
    opt.zero_grad()
    _loss(model, rank, 2).backward()
    if rank == 1:
        params[0].grad[0, 0] = float("nan")
    try:
        opt.step()
    except FloatingPointError as e:
        out["nonfinite"] = str(e)
    return out


def test_clipping_after_synchronize_clips_the_combined_gradient(run_workers):
    r0, r1 = run_workers(_clip_worker, 2, deadline_s=60)
    assert r0["local norm"] != r1["local norm"]                  # the ranks' own gradients
    for r in (r0, r1):
        assert abs(r["norm"] - r["mean norm"]) < 1e-6 * r["mean norm"]
        assert r["norm"] > 0.1                                   # so clipping did something
        assert abs(float(r["clipped"].norm()) - 0.1) < 1e-5
        torch.testing.assert_close(r["update"], 0.1 * r["clipped"])
        assert "call opt.synchronize() before step()" in r["misuse"]
        assert "non-finite gradients at step 1 on rank(s) [1]" in r["nonfinite"]
    assert torch.equal(r0["update"], r1["update"])


def _channels_last_worker() -> tuple[int, bool]:
    """The first parameter is a channels_last conv weight (its gradient is not contiguous);
    rank 1 overflows, so rank 0 must mark its own finite gradients for its GradScaler."""
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    model = model.to(memory_format=torch.channels_last)
    opt = DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model)
    scaler = torch.amp.GradScaler("cpu")
    x = torch.randn(2, 3, 6, 6).to(memory_format=torch.channels_last)
    loss = F.cross_entropy(model(x), torch.tensor([0, 1]))
    scaler.scale(loss * (float("inf") if rank == 1 else 1.0)).backward()
    scaler.unscale_(opt)
    opt.synchronize()
    with opt.skip_synchronize():
        scaler.step(opt)
    scaler.update()
    return opt.skipped_steps, bool(torch.isinf(model[0].weight.grad).any())


def test_a_skip_is_agreed_with_non_contiguous_gradients(run_workers):
    assert run_workers(_channels_last_worker, 2, deadline_s=60) == [(1, True), (1, True)]
