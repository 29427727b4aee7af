"""Small models for CPU-scale experiments, built from a dataset's shape."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from flexsync.models.cnn import CNN
from flexsync.models.lstm import LSTMLanguageModel
from flexsync.models.resnet import ResNet
from flexsync.models.transformer import PRESETS, TransformerLM

MODELS = ("cnn", "resnet", "lstm", "transformer")
MODEL_SIZES = tuple(PRESETS)


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, task: str,
                **options: Any) -> nn.Module:
    """Build a built-in model for a dataset of ``input_shape`` samples and ``num_classes``
    classes (or vocabulary size for the language model)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")
    if (name in ("lstm", "transformer")) != (task == "language"):
        raise ValueError(
            f"model {name!r} does not fit a {task} dataset: use 'lstm' or 'transformer' with "
            "language datasets and 'cnn' or 'resnet' with image datasets"
        )
    if name == "cnn":
        return CNN(input_shape, num_classes)
    if name == "resnet":
        return ResNet(input_shape, num_classes)
    if name == "transformer":
        return TransformerLM.from_preset(options.get("preset", "xs"), num_classes, input_shape[0])
    return LSTMLanguageModel(num_classes)


__all__ = ["CNN", "ResNet", "LSTMLanguageModel", "TransformerLM", "build_model", "MODELS",
           "MODEL_SIZES"]
