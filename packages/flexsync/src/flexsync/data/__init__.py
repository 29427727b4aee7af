"""Offline datasets (generated or bundled in a PyPI package) and partitioners."""

from flexsync.data.dataset import Dataset, load_dataset

__all__ = ["Dataset", "load_dataset"]
