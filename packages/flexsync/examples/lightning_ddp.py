"""PyTorch Lightning with flexsync's compression: ``FlexsyncDDPStrategy`` in the Trainer.

    python examples/lightning_ddp.py                    # Lightning starts 2 CPU processes
    python examples/lightning_ddp.py --strategy topk --ratio 0.1
    torchrun --standalone --nproc_per_node=2 examples/lightning_ddp.py

Lightning launches the processes (it re-runs this script for rank 1), wraps the module in
DDP, and the strategy registers flexsync's hook on it: every gradient bucket is top-k
compressed with error feedback and aggregated (AR-Topk here). Needs ``pytorch-lightning`` or
``lightning`` (``pip install flexsync[lightning]``). At the end every rank checks that the
replicas are identical.
"""

from __future__ import annotations

import argparse
import os
import warnings

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from flexsync.integrations.lightning import DDPStrategy, FlexsyncDDPStrategy

if DDPStrategy.__module__.startswith("lightning."):
    import lightning.pytorch as pl
else:
    import pytorch_lightning as pl


def make_data(n: int = 512, seed: int = 0) -> TensorDataset:
    """A small separable 4-class problem (the same on every rank)."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(4, 16, generator=g) * 2
    y = torch.randint(4, (n,), generator=g)
    return TensorDataset(centers[y] + torch.randn(n, 16, generator=g), y)


class Classifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)

    def on_train_end(self) -> None:
        flat = torch.cat([p.detach().reshape(-1) for p in self.parameters()])
        ref = flat.clone()
        dist.broadcast(ref, 0)
        same = torch.tensor([float(torch.equal(flat, ref))])
        dist.all_reduce(same, op=dist.ReduceOp.MIN)
        state = self.trainer.strategy.flexsync_state
        if self.trainer.is_global_zero:
            print(f"flexsync hook: {state.comm.total_bytes} bytes sent by rank 0, "
                  f"last signals {state.signals()}")
            print(f"replicas identical: {bool(same.item())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="artopk", choices=["topk", "artopk"])
    parser.add_argument("--ratio", type=float, default=0.05)
    parser.add_argument("--steps", type=int, default=int(os.environ.get("EXAMPLE_STEPS", 100)))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    pl.seed_everything(0, verbose=False)
    data = make_data()
    model = Classifier()
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, max_steps=args.steps, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        strategy=FlexsyncDDPStrategy(args.strategy, ratio=args.ratio,
                                     hook_options={"index": "star"}
                                     if args.strategy == "artopk" else {}))
    trainer.fit(model, DataLoader(data, batch_size=32, shuffle=True))
    if trainer.is_global_zero:
        x, y = data.tensors
        with torch.no_grad():
            accuracy = (model.net(x).argmax(1) == y).float().mean().item()
        print(f"final accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
