"""DistributedOptimizer is a torch optimizer: what works on the optimizer it wraps works on it.

Specification:

* it passes ``isinstance(opt, torch.optim.Optimizer)`` and shares the wrapped optimizer's
  ``param_groups``, ``state`` and ``defaults`` (the same objects, also after
  ``load_state_dict`` replaces them);
* StepLR and CosineAnnealingLR stepped over the wrapper give the learning-rate sequence they
  give over a plain optimizer, and that rate is the one the update uses;
* ``add_param_group`` adds to the wrapped optimizer (and refuses parameters the strategy
  does not aggregate); ``zero_grad(set_to_none=...)`` behaves as torch's;
* ``state_dict()`` is torch's format plus the strategy's state, loadable into a plain
  optimizer, and a round trip restores the strategy's step count and residual;
* a parameter that received no gradient on any rank is left alone, as torch leaves it
  (AdamW's weight decay must not move it); one used on a single rank is updated on all.
"""

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import CosineAnnealingLR, StepLR

from flexsync import DistributedOptimizer
from flexsync.strategies.grads import flatten_params

STEPS = 6
SCHEDULERS = {"step": lambda o: StepLR(o, step_size=2, gamma=0.5),
              "cosine": lambda o: CosineAnnealingLR(o, T_max=4, eta_min=0.01)}


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def _batch(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 * step + rank)
    return torch.randn(8, 6, generator=g), torch.randint(3, (8,), generator=g)


def _lr_sequence(opt: torch.optim.Optimizer, model: nn.Module, kind: str) -> list[float]:
    sched = SCHEDULERS[kind](opt)
    rank = dist.get_rank() if dist.is_initialized() else 0
    lrs = []
    for step in range(STEPS):
        x, y = _batch(rank, step)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def _scheduler_worker() -> dict:
    out = {}
    for kind in SCHEDULERS:
        model = _model()
        opt = DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model)
        out[kind] = _lr_sequence(opt, model, kind)
        out[f"{kind} inner"] = [g["lr"] for g in opt.optimizer.param_groups]
    return out


def test_lr_schedulers_give_the_plain_optimizers_sequence(run_workers):
    results = run_workers(_scheduler_worker, 2)
    for kind in SCHEDULERS:
        model = _model()
        plain = _lr_sequence(torch.optim.SGD(model.parameters(), lr=0.1), model, kind)
        for r in results:
            assert r[kind] == pytest.approx(plain, rel=0, abs=0), kind
            assert r[f"{kind} inner"] == [plain[-1]]        # the wrapped optimizer's rate


def _api_worker() -> dict:
    rank = dist.get_rank()
    model = _model()
    first, second = list(model[0].parameters()), list(model[2].parameters())
    inner = torch.optim.SGD(first, lr=0.1, momentum=0.9)
    opt = DistributedOptimizer(inner, model, strategy="topk", ratio=0.2)
    out = {"isinstance": isinstance(opt, torch.optim.Optimizer),
           "shared": (opt.param_groups is inner.param_groups and opt.state is inner.state
                      and opt.defaults is inner.defaults)}
    opt.add_param_group({"params": second, "lr": 0.05})
    out["groups"] = [len(g["params"]) for g in inner.param_groups]
    try:
        opt.add_param_group({"params": [nn.Parameter(torch.zeros(2))]})
    except ValueError as e:
        out["foreign"] = str(e)
    for step in range(3):
        x, y = _batch(rank, step)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    out["momentum buffers"] = len(opt.state)
    state = opt.state_dict()
    plain = torch.optim.SGD([{"params": first}, {"params": second}], lr=1.0, momentum=0.9)
    plain.load_state_dict(state)                               # torch's own format
    out["plain lrs"] = [g["lr"] for g in plain.param_groups]
    residual = opt.strategy.sparsifier.ef.residual.clone()
    model2 = _model()
    opt2 = DistributedOptimizer(torch.optim.SGD(model2[0].parameters(), lr=0.1, momentum=0.9),
                                model2, strategy="topk", ratio=0.2)
    opt2.add_param_group({"params": list(model2[2].parameters()), "lr": 0.05})
    opt2.load_state_dict(state)
    out["restored"] = (opt2.num_steps, torch.equal(opt2.strategy.sparsifier.ef.residual,
                                                   residual), opt2.state is opt2.optimizer.state)
    opt.zero_grad(set_to_none=False)
    out["zeroed"] = all(p.grad is not None and not p.grad.any() for p in model.parameters())
    opt.zero_grad()
    out["none"] = all(p.grad is None for p in model.parameters())
    return out


def test_torch_optimizer_surface(run_workers):
    for r in run_workers(_api_worker, 2):
        assert r["isinstance"] and r["shared"]
        assert r["groups"] == [2, 2]
        assert "not among the model's trainable parameters" in r["foreign"]
        assert r["momentum buffers"] == 4
        assert r["plain lrs"] == [0.1, 0.05]
        assert r["restored"] == (3, True, True)
        assert r["zeroed"] and r["none"]


class TwoHeads(nn.Module):
    """``used_by_one`` runs on rank 1 only; ``never`` runs nowhere."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Linear(6, 3)
        self.used_by_one = nn.Linear(6, 3)
        self.never = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + self.used_by_one(x) if dist.get_rank() == 1 else out


def _unused_worker(strategy: str, options: dict) -> dict:
    model = TwoHeads()
    init = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = DistributedOptimizer(torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1),
                               model, strategy=strategy, **options)
    for step in range(5):
        x, y = _batch(dist.get_rank(), step)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return {"moved": {n: not torch.equal(p, init[n]) for n, p in model.named_parameters()},
            "params": flatten_params(list(model.parameters()))}


@pytest.mark.parametrize("strategy, options", [("dense", {}), ("topk", {"ratio": 0.5}),
                                               ("localsgd", {"average_every": 1})])
def test_a_parameter_no_rank_used_is_left_alone_under_adamw(run_workers, strategy, options):
    r0, r1 = run_workers(_unused_worker, 2, strategy, options)
    assert torch.equal(r0["params"], r1["params"])
    for r in (r0, r1):
        assert r["moved"]["never.weight"] is False and r["moved"]["never.bias"] is False
        assert r["moved"]["body.weight"] and r["moved"]["body.bias"]
    # used on rank 1 only: its averaged gradient updates it on both ranks (localsgd averages it)
    assert r0["moved"]["used_by_one.weight"] and r1["moved"]["used_by_one.weight"]
