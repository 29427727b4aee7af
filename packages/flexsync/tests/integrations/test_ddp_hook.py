"""The DDP communication hook on real gloo workers (one launch, world 3).

What is compared, and why it must match: with ``bucket_cap_mb`` large, DDP puts the whole
model in one bucket, so the hook error-feeds, selects and aggregates the same vector as the
optimizer-wrapper strategy on the flattened model — only the order of the entries differs
(DDP lays the rebuilt bucket out in gradient-ready order). Fused top-k, error feedback and
both aggregations are permutation-equivariant (no ties: random gradients), so the
parameters after every step are the same up to floating-point summation order. The hook's
first step is a dense allreduce-mean (DDP rebuilds its buckets after it), so the wrapper's
first step runs the ``dense`` strategy, and its top-k strategy starts from a zero residual at
step 1, exactly like the hook's residual (created at its first compressed step). For STAR the
wrapper's step counter starts at 1 too, so both pick the same round-robin broadcaster.
Values travel as fp32 here: fp16 sums are exact per element but a ring allreduce adds the
ranks in an order that depends on the element's position, which differs between the two
layouts, and fp16 shows that order at 1e-4.
"""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from flexsync import DistributedOptimizer
from flexsync.comm import Communicator
from flexsync.integrations.ddp_hook import (
    FlexsyncHookState,
    flexsync_hook,
    register_flexsync_hook,
)
from flexsync.net.conditions import NetworkConditions
from flexsync.strategies.grads import flatten_params

STEPS, WORLD, RATIO = 5, 3, 0.05


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                         nn.Linear(32, 5))


def _batch(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 * step + rank)
    return torch.randn(8, 12, generator=g), torch.randint(5, (8,), generator=g)


def _sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)


def _with_hook(strategy: str, bucket_cap_mb: float, ddp_kwargs=None, **options):
    rank = torch.distributed.get_rank()
    model = _model()
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=bucket_cap_mb,
                                              **(ddp_kwargs or {}))
    state = register_flexsync_hook(ddp, strategy, RATIO, **options)
    opt = _sgd(model)
    signals = []
    for step in range(STEPS):
        x, y = _batch(rank, step)
        opt.zero_grad()
        F.cross_entropy(ddp(x), y).backward()
        opt.step()
        signals.append(state.signals())
    return flatten_params(list(model.parameters())), state, signals


def _with_wrapper(strategy: str, dense_steps: int = 1, **options):
    rank = torch.distributed.get_rank()
    model = _model()
    opt = _sgd(model)
    comm = Communicator()
    # overlap=False: two wrappers share the model here, and an overlapped dense wrapper's
    # hooks would send buckets in backward passes whose step() is the other wrapper's
    dense = DistributedOptimizer(opt, model, strategy="dense", comm=comm, overlap=False)
    sparse = DistributedOptimizer(opt, model, strategy=strategy, comm=comm, ratio=RATIO,
                                  **options)
    sparse.num_steps = dense_steps              # its first step is the run's step 1
    for step in range(STEPS):
        x, y = _batch(rank, step)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        (dense if step < dense_steps else sparse).step()
    return flatten_params(list(model.parameters())), comm.total_bytes


def _worker():
    out = {}
    for strategy, opts in (("topk", {"values": "fp32"}),
                           ("artopk", {"index": "star", "values": "fp32"})):
        hook_params, state, _ = _with_hook(strategy, bucket_cap_mb=100.0, **opts)
        wrap_params, wrap_bytes = _with_wrapper(strategy, **opts)
        out[strategy] = (hook_params, wrap_params, state.comm.total_bytes, wrap_bytes,
                         sorted(state.sparsifiers))
    # the same through DDP's zero-copy bucket views and its static-graph mode (buckets are
    # rebuilt after iteration 2 there, so compression starts at step 2)
    views = {"gradient_as_bucket_view": True, "static_graph": True}
    out["views"] = (_with_hook("artopk", 100.0, views, values="fp32")[0],
                    _with_wrapper("artopk", dense_steps=2, values="fp32")[0])
    # the strategies' default wire coding (fp16 values) applies in the hook too
    _, fp16_state, _ = _with_hook("topk", bucket_cap_mb=100.0)
    out["values"] = ([sp.values for sp in fp16_state.sparsifiers.values()],
                     fp16_state.comm.total_bytes, out["topk"][2])
    # Several buckets, flexible: per-bucket choices and residual keys.
    cond = NetworkConditions(1e-5, 1.25e5)          # bandwidth-bound: ART-Ring wins
    params, state, signals = _with_hook("flexible", bucket_cap_mb=0.004, conditions=cond)
    ckpt = state.state_dict()
    out["flexible"] = (params, signals, sorted(state.sparsifiers),
                       {k: v["residual"].numel() for k, v in ckpt["residuals"].items()},
                       ckpt["iter"])
    return out


def test_hook_matches_the_wrapper_and_keeps_per_bucket_state(run_workers):
    results = run_workers(_worker, WORLD)
    names = [n for n, _ in _model().named_parameters()]
    sizes = dict((n, p.numel()) for n, p in _model().named_parameters())
    for hook_params, wrap_params in (r["views"] for r in results):
        torch.testing.assert_close(hook_params, wrap_params, rtol=1e-5, atol=1e-6)
    for strategy in ("topk", "artopk"):
        for hook_params, wrap_params, hook_bytes, wrap_bytes, keys in (
                r[strategy] for r in results):
            torch.testing.assert_close(hook_params, wrap_params, rtol=1e-5, atol=1e-6)
            assert not torch.equal(hook_params, flatten_params(list(_model().parameters())))
            assert hook_bytes == wrap_bytes           # the same messages, accounted alike
            assert len(keys) == 1 and set(keys[0].split(",")) == set(names)   # one bucket
        # replicas agree
        torch.testing.assert_close(results[0][strategy][0], results[1][strategy][0])

    for codings, fp16_bytes, fp32_bytes in (r["values"] for r in results):
        assert codings == ["fp16"] and fp16_bytes < fp32_bytes

    params0, signals0, keys0, ckpt_sizes, it = results[0]["flexible"]
    assert it == STEPS
    assert len(keys0) > 1                             # several buckets, one residual each
    covered = [n for key in keys0 for n in key.split(",")]
    assert sorted(covered) == sorted(names)           # disjoint, and covers the model
    assert ckpt_sizes == {k: sum(sizes[n] for n in k.split(",")) for k in keys0}
    assert all(s["collective"] == "dense" for s in signals0[0].values())
    assert all(s["collective"] == "art_ring" for step in signals0[1:] for s in step.values())
    for params, signals, keys, _, _ in (r["flexible"] for r in results[1:]):
        assert signals == signals0 and keys == keys0     # every rank decided the same
        torch.testing.assert_close(params, params0)


EVENTS: list = []


def _traced_hook(state: FlexsyncHookState, bucket: torch.distributed.GradBucket
                 ) -> torch.futures.Future[torch.Tensor]:
    """flexsync_hook, logging when each bucket's hook starts and when its future completes."""
    i = bucket.index()
    EVENTS.append(("start", i))
    fut = flexsync_hook(state, bucket)

    def done(f: torch.futures.Future) -> torch.Tensor:
        EVENTS.append(("done", i))
        return f.value()

    return fut.then(done)


def _overlap_worker(strategy):
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(300, 300) for _ in range(8)])     # ~0.36 MB per layer
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=1)
    state = FlexsyncHookState(strategy, 0.01, model=model)
    state.comm.added_latency = 0.5          # an emulated slow link: 0.5 s per latency term
    ddp.register_comm_hook(state, _traced_hook)
    order = []
    for _ in range(6):
        EVENTS.clear()
        ddp(torch.randn(8, 300)).square().mean().backward()
        order.append(list(EVENTS))
    return order


@pytest.mark.parametrize("strategy", ["topk", "artopk"])
def test_bucket_communication_overlaps_the_next_buckets_backward(run_workers, strategy):
    """Event order, not time: with several 1 MB buckets, the hook of some bucket i+1 (called
    by autograd once its gradients are ready) starts before bucket i's collective has
    completed, on the compressed steps after DDP's bucket rebuild (steps 2-5; step 0 runs
    one bucket, step 1 the rebuilt layout's first pass). A hook that communicated
    synchronously would complete bucket i before returning, so this order could not occur
    on any step; on a loaded machine a starved main thread can miss the 0.5 s window on
    some steps, so the property asked is: on at least one step."""
    for order in run_workers(_overlap_worker, 2, strategy):
        overlapped = []
        for events in order[2:]:
            starts = [i for kind, i in events if kind == "start"]
            assert len(starts) >= 3                                   # several buckets
            assert sorted(i for kind, i in events if kind == "done") == sorted(starts)
            overlapped.append(any(events.index(("start", b)) < events.index(("done", a))
                                  for a, b in zip(starts, starts[1:], strict=False)))
        assert any(overlapped), order


@pytest.mark.parametrize("kwargs, match", [
    ({"strategy": "dense"}, "strategy must be one of"),
    ({"ratio": 0.0}, r"strategy.ratio: ratio must be in \(0, 1\]"),
    ({"ratio": 1.5}, r"strategy.ratio: ratio must be in \(0, 1\]"),
    ({"ratio": True}, "strategy.ratio: .*got True"),
    ({"ratio": "moo"}, "use DistributedOptimizer"),
    ({"strategy": "flexible"}, "needs conditions="),
    ({"strategy": "artopk", "selector": "layerwise"}, "layerwise"),
    ({"start_iter": 0}, "start_iter must be an int >= 1"),
    ({"index": "nope"}, "strategy.index: Input should be 'star' or 'var'"),
    ({"collectives": ["dense"]}, "strategy.collectives: unknown option"),
])
def test_hook_state_rejects_bad_arguments_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FlexsyncHookState(**kwargs)       # validated before any process group is needed


def _auto_worker():
    cond = NetworkConditions(1e-5, 1.25e5)          # bandwidth-bound: compression pays
    out = {name: _with_hook(name, bucket_cap_mb=0.004, conditions=cond, **opts)
           for name, opts in (("flexible", {}), ("auto", {"selection_s": 0.0}))}
    out["auto-slow-selection"] = _with_hook("auto", bucket_cap_mb=0.004, conditions=cond,
                                            selection_s=1e3)
    return {k: (params, signals) for k, (params, _, signals) in out.items()}


def test_auto_in_the_hook_is_flexible_plus_the_dense_switch_without_skipping(run_workers):
    """docs/methods.md §6: in a DDP hook ``auto`` cannot skip a bucket's communication; it
    picks flexible's collective per bucket and goes dense when selection plus compressed
    communication is not below dense."""
    for r in run_workers(_auto_worker, WORLD):
        flex_params, flex_signals = r["flexible"]
        auto_params, auto_signals = r["auto"]
        assert torch.equal(auto_params, flex_params) and auto_signals == flex_signals
        _, slow = r["auto-slow-selection"]
        assert all(s["collective"] == "dense" and s["ratio"] == 1.0
                   for step in slow for s in step.values())
    with pytest.raises(ValueError, match="cannot skip a bucket's communication"):
        FlexsyncHookState("auto", skip=True)
