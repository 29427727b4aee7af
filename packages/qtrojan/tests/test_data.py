"""Offline datasets, feature pipeline and the IDX reader (design §5)."""

from __future__ import annotations

import gzip
import math
import struct

import numpy as np
import pytest
import torch

from qtrojan.data import (
    load_digits_images,
    load_idx_images,
    load_images,
    load_mnist5k_images,
    pool_features,
    prepare_task,
    read_idx,
    select_classes,
    write_idx,
)


def test_bundled_datasets_shapes() -> None:
    x, y = load_digits_images()
    assert x.shape == (1797, 8, 8) and y.shape == (1797,)
    x, y = load_mnist5k_images()
    assert x.shape == (5000, 28, 28)
    assert np.bincount(y).tolist() == [500] * 10
    assert 0 <= x.min() and x.max() <= 255


def test_select_classes_remaps_in_given_order() -> None:
    labels = np.array([3, 6, 1, 6, 3, 0])
    images = np.arange(6)[:, None, None] * np.ones((1, 2, 2))
    imgs, y = select_classes(images, labels, (6, 3))
    assert y.tolist() == [1, 0, 0, 1]
    assert imgs[:, 0, 0].tolist() == [0, 1, 3, 4]
    with pytest.raises(ValueError, match="do not occur"):
        select_classes(images, labels, (6, 9))


@pytest.mark.parametrize("method", ["pca", "pool"])
def test_prepare_task_angles_split_and_balance(method: str) -> None:
    images, labels = load_digits_images()
    d = prepare_task(images, labels, (0, 1, 2, 3), 4, method=method, test_size=0.3, seed=0)
    n_total = int(np.isin(labels, [0, 1, 2, 3]).sum())
    assert d.x_train.shape[0] + d.x_test.shape[0] == n_total
    assert d.x_train.shape[1] == 4 == d.n_features
    # min-max fitted on train: each train feature spans exactly [0, pi]; test is clipped
    assert torch.allclose(d.x_train.min(0).values, torch.zeros(4), atol=1e-6)
    assert torch.allclose(d.x_train.max(0).values, torch.full((4,), math.pi), atol=1e-6)
    assert d.x_test.min() >= 0 and d.x_test.max() <= math.pi + 1e-6
    # stratified: every class keeps (about) the same share in both splits
    tr = torch.bincount(d.y_train) / len(d.y_train)
    te = torch.bincount(d.y_test) / len(d.y_test)
    assert (tr - te).abs().max() < 0.02
    again = prepare_task(images, labels, (0, 1, 2, 3), 4, method=method, seed=0)
    assert torch.equal(again.x_train, d.x_train)


def test_pooling_is_block_average() -> None:
    img = np.arange(16, dtype=float).reshape(1, 4, 4)
    out = pool_features(img, 4)
    expected = [img[0, :2, :2].mean(), img[0, :2, 2:].mean(), img[0, 2:, :2].mean(),
                img[0, 2:, 2:].mean()]
    assert np.allclose(out[0], expected)
    with pytest.raises(ValueError, match="square"):
        pool_features(img, 3)


def _hand_written_idx(path, images: np.ndarray, labels: np.ndarray) -> tuple:
    """IDX files written with struct only, independent of ``write_idx``."""
    img_path, lab_path = path / "imgs-idx3-ubyte", path / "labels-idx1-ubyte.gz"
    img_path.write_bytes(struct.pack(">HBB3I", 0, 0x08, 3, *images.shape)
                         + images.astype(np.uint8).tobytes())
    with gzip.open(lab_path, "wb") as f:
        f.write(struct.pack(">HBBI", 0, 0x08, 1, len(labels)) + labels.astype(np.uint8).tobytes())
    return img_path, lab_path


def test_idx_loader_reads_user_files(tmp_path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(30, 6, 6))
    labels = np.repeat([0, 1, 2], 10)
    img_path, lab_path = _hand_written_idx(tmp_path, images, labels)
    x, y = load_idx_images(img_path, lab_path)
    assert np.array_equal(x, images) and np.array_equal(y, labels)
    x2, y2 = load_images("idx", img_path, lab_path)
    assert np.array_equal(x2, x)
    d = prepare_task(x, y, (2, 0), 4, seed=1)
    assert set(d.y_train.tolist()) == {0, 1}


def test_write_idx_round_trip_and_errors(tmp_path) -> None:
    a = np.linspace(-1, 1, 24).reshape(2, 3, 4)
    write_idx(tmp_path / "f.idx.gz", a)
    assert np.array_equal(read_idx(tmp_path / "f.idx.gz"), a)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(struct.pack(">HBBI", 0, 8, 1, 10) + b"\x00" * 3)
    with pytest.raises(ValueError, match="expected 10"):
        read_idx(tmp_path / "short")
    with pytest.raises(ValueError, match="idx_images"):
        load_images("idx")
    with pytest.raises(ValueError, match="dataset"):
        load_images("fashion")
