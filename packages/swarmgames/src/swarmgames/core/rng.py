"""Seeded random streams (design note §2.4).

One :class:`numpy.random.SeedSequence` is spawned into independent, *named* streams so that
e.g. adding a shadowing draw never shifts the layout.  No global RNG state is touched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import numpy as np

STREAMS: tuple[str, ...] = ("layout", "demand", "mobility", "shadowing", "policy")


class SeedStreams:
    """Named ``Generator(PCG64)`` streams derived from one root seed.

    The i-th name in ``names`` always gets the i-th child of ``SeedSequence(seed)``, so a
    stream's draws depend only on ``(seed, its position in names)``.
    """

    def __init__(self, seed: int, names: Iterable[str] = STREAMS) -> None:
        self.seed = int(seed)
        self.names = tuple(names)
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicate stream names in {self.names}")
        children = np.random.SeedSequence(self.seed).spawn(len(self.names))
        self._gens = {n: np.random.Generator(np.random.PCG64(c)) for n, c in zip(
            self.names, children, strict=True)}

    def __getitem__(self, name: str) -> np.random.Generator:
        try:
            return self._gens[name]
        except KeyError:
            raise KeyError(f"unknown random stream {name!r}; known: {self.names}") from None


def trajectory_hash(arrays: Mapping[str, np.ndarray] | Iterable[np.ndarray],
                    decimals: int = 9) -> str:
    """SHA-256 of rounded arrays: the determinism contract of design note §2.4."""
    h = hashlib.sha256()
    items = sorted(arrays.items()) if isinstance(arrays, Mapping) else enumerate(arrays)
    for key, arr in items:
        a = np.round(np.asarray(arr, dtype=float), decimals) + 0.0  # +0.0 folds -0.0
        h.update(str(key).encode())
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()
