"""Offline datasets (generated, bundled in a PyPI package, or read from the Python
installation) and partitioners."""

from flexsync.data.dataset import Dataset
from flexsync.data.registry import DATASETS, LANGUAGE_DATASETS, load_dataset

__all__ = ["Dataset", "load_dataset", "DATASETS", "LANGUAGE_DATASETS"]
