"""Train your own dataset and model with flexsync's training loop (``flexsync.train``):
metrics, modeled network time, evaluation and the run directory come for free.

Runs as written on CPU::

    python examples/custom_model.py                          # 2 workers, flexible top-k
    python examples/custom_model.py --strategy gravac --steps 200 --out runs/mine
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.nn as nn

import flexsync


def make_dataset(seed: int = 0) -> flexsync.Dataset:
    """Two noisy rings in the plane: a small binary problem a linear model cannot solve."""
    g = torch.Generator().manual_seed(seed)

    def rings(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(2, (n,), generator=g)
        angle = torch.rand(n, generator=g) * 6.2832
        radius = 1.0 + y.float() + 0.15 * torch.randn(n, generator=g)
        return torch.stack([radius * angle.cos(), radius * angle.sin()], 1), y

    train_x, train_y = rings(2048)
    test_x, test_y = rings(512)
    return flexsync.Dataset("rings", train_x, train_y, test_x, test_y, num_classes=2)


class MLP(nn.Module):
    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="flexible")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=int(os.environ.get("EXAMPLE_STEPS", 150)))
    parser.add_argument("--out", default="runs/custom-model")
    args = parser.parse_args()
    strategy = {"name": args.strategy}
    if args.strategy in ("topk", "artopk", "flexible"):
        strategy["ratio"] = 0.05
    config = {
        "workers": args.workers, "steps": args.steps, "batch_size": 32,
        "strategy": strategy,
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "network": {"kind": "modeled", "alpha": "1ms", "bandwidth": "100mbit"},
        "eval": {"every": max(1, args.steps // 3)}, "target": {"accuracy": 0.9},
        "progress": False,
    }
    summary = flexsync.train(config, dataset=make_dataset(), model_fn=lambda data: MLP(),
                             out=args.out)
    print(f"final accuracy {summary['final_accuracy']:.3f} after {summary['steps']} steps; "
          f"modeled time {summary['modeled_time_s']:.2f} s, bytes sent {summary['bytes_sent']}; "
          f"run directory {args.out}")


if __name__ == "__main__":
    main()
