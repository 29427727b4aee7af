"""Gradient compression: index selection, error feedback, and the compression gain.

Pure tensor code: nothing here knows about workers or collectives (GRACE's split of
compressor / memory / communicator).
"""

from flexsync.compress.gain import candidate_gains, compression_gain
from flexsync.compress.residual import ErrorFeedback
from flexsync.compress.sparsifier import Sparsifier
from flexsync.compress.threshold import AdaptiveThreshold
from flexsync.compress.topk import (
    SELECTORS,
    layerwise_topk,
    multilevel_topk,
    randomk,
    select,
    threshold_topk,
    topk,
)

__all__ = [
    "AdaptiveThreshold", "ErrorFeedback", "Sparsifier", "compression_gain", "candidate_gains",
    "SELECTORS",
    "select", "topk", "layerwise_topk", "randomk", "threshold_topk", "multilevel_topk",
]
