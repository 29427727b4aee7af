"""Small models for CPU-scale experiments, built from a dataset's shape."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from flexsync.models.cnn import CNN
from flexsync.models.lstm import LSTMLanguageModel
from flexsync.models.resnet import ResNet

MODELS = ("cnn", "resnet", "lstm")


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, task: str,
                **options: Any) -> nn.Module:
    """Build a built-in model for a dataset of ``input_shape`` samples and ``num_classes``
    classes (or vocabulary size for the language model)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")
    if (name == "lstm") != (task == "language"):
        raise ValueError(
            f"model {name!r} does not fit a {task} dataset: use 'lstm' with synthetic-text and "
            "'cnn' or 'resnet' with image datasets"
        )
    if name == "cnn":
        return CNN(input_shape, num_classes)
    if name == "resnet":
        return ResNet(input_shape, num_classes)
    return LSTMLanguageModel(num_classes)


__all__ = ["CNN", "ResNet", "LSTMLanguageModel", "build_model", "MODELS"]
