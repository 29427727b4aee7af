"""Dense BSP equals single-process training on the union of the workers' batches."""

import torch
import torch.nn.functional as F

from flexsync import DistributedOptimizer
from flexsync.models import CNN
from flexsync.strategies.grads import flatten_params

STEPS, WORLD, BATCH = 6, 3, 8


def _batches():
    g = torch.Generator().manual_seed(1)
    return [[(torch.randn(BATCH, 1, 8, 8, generator=g), torch.randint(10, (BATCH,), generator=g))
             for _ in range(WORLD)] for _ in range(STEPS)]


def _model():
    torch.manual_seed(0)
    return CNN((1, 8, 8), 10)


def _optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)


def _worker(batches, init):
    model = _model()
    model.load_state_dict(init)
    opt = DistributedOptimizer(_optimizer(model), model, strategy="dense")
    rank = torch.distributed.get_rank()
    for step in range(STEPS):
        x, y = batches[step][rank]
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return flatten_params(list(model.parameters())), opt.comm.total_bytes


def test_dense_equals_union_batch_training(run_workers):
    batches = _batches()
    ref = _model()
    init = {k: v.clone() for k, v in ref.state_dict().items()}
    opt = _optimizer(ref)
    for step in range(STEPS):
        x = torch.cat([b[0] for b in batches[step]])
        y = torch.cat([b[1] for b in batches[step]])
        opt.zero_grad()
        F.cross_entropy(ref(x), y).backward()
        opt.step()
    expected = flatten_params(list(ref.parameters()))

    results = run_workers(_worker, WORLD, batches, init)
    n_params = expected.numel()
    for params, sent in results:
        torch.testing.assert_close(params, expected, rtol=1e-5, atol=1e-6)
        assert sent == STEPS * 4 * n_params         # one fp32 allreduce of the model per step
    assert torch.equal(results[0][0], results[1][0])   # replicas stay bit-identical
