"""Shared fixtures: one thread (design §7), small trained models reused across tests."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from qtrojan.data import TaskData, load_digits_images, prepare_task  # noqa: E402
from qtrojan.qnn import QNN  # noqa: E402
from qtrojan.training import train  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits01() -> TaskData:
    images, labels = load_digits_images()
    return prepare_task(images, labels, (0, 1), 4, seed=0)


@pytest.fixture(scope="session")
def digits0123() -> TaskData:
    images, labels = load_digits_images()
    return prepare_task(images, labels, (0, 1, 2, 3), 4, seed=0)


@pytest.fixture(scope="session")
def trained01(digits01: TaskData) -> QNN:
    """Victim for digits {0,1}: n = 4, L = 3, 10 epochs (design §10 item 10)."""
    model = QNN(4, 3, 2, seed=0)
    train(model, digits01.x_train, digits01.y_train, epochs=10, seed=0)
    return model


@pytest.fixture(scope="session")
def trained0123(digits0123: TaskData) -> QNN:
    model = QNN(4, 4, 4, seed=0)
    train(model, digits0123.x_train, digits0123.y_train, epochs=10, seed=0)
    return model
