"""The Lightning strategy: Lightning's DDPStrategy with flexsync's hook on the buckets.

Specification: bad hook options are refused when the strategy is built (before Lightning
starts any process), naming the option; once Lightning has wrapped the module in DDP, the
strategy registers the flexsync hook on it, on CPU too, so the gradients are compressed,
accounted and the replicas stay identical. (A full ``Trainer.fit`` over two processes runs in
tests/test_examples.py: examples/lightning_ddp.py.)
"""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from flexsync import ConfigError
from flexsync.strategies.grads import flatten_params

pytest.importorskip("pytorch_lightning")

from flexsync.integrations.lightning import FlexsyncDDPStrategy  # noqa: E402


@pytest.mark.parametrize("args, kwargs, match", [
    (("dense",), {}, r"strategy must be one of \['topk', 'artopk', 'flexible', 'auto'\]"),
    (("topk",), {"ratio": 2.0}, r"strategy\.ratio"),
    (("artopk",), {"hook_options": {"index": "middle"}}, r"strategy\.index"),
])
def test_bad_options_are_refused_when_the_strategy_is_built(args, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        FlexsyncDDPStrategy(*args, **kwargs)


def _worker() -> tuple[torch.Tensor, int, bool]:
    rank = torch.distributed.get_rank()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    strategy = FlexsyncDDPStrategy("topk", ratio=0.1)
    strategy.model = nn.parallel.DistributedDataParallel(model)    # what Lightning does
    strategy._register_ddp_hooks()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(3):
        g = torch.Generator().manual_seed(10 * step + rank)
        opt.zero_grad()
        F.cross_entropy(strategy.model(torch.randn(8, 6, generator=g)),
                        torch.randint(3, (8,), generator=g)).backward()
        opt.step()
    state = strategy.flexsync_state
    return flatten_params(list(model.parameters())), state.comm.total_bytes, bool(state.signals())


def test_the_flexsync_hook_runs_on_lightnings_ddp_model(run_workers):
    (p0, sent0, signals), (p1, _, _) = run_workers(_worker, 2)
    assert torch.equal(p0, p1)
    assert sent0 > 0 and signals
