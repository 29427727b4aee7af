"""A harder synthetic image task: difficulty presets on top of ``synthetic_images`` (issue #23,
"Workloads": class overlap, noise, variation).

Why: on the default synthetic task a fixed aggressive top-k ratio reaches the same accuracy as
dense, so the benchmarks cannot tell a good communication decision from a bad one. Here the
task is made harder in three ways, all built by calling
:func:`flexsync.data.synthetic.synthetic_images` with other parameters:

* **Variation** - more prototypes per class, larger random shifts, more pixel noise.
* **Class overlap** - the generator is asked for ``classes × prototypes`` one-prototype
  "modes"; mode ``m`` belongs to class ``m // prototypes``. A fraction ``overlap`` of each
  class's modes is *shared* with the next class (``(c + 1) mod C``): a sample drawn from a
  shared mode is labelled with either class with probability 1/2. That is real overlap
  between class-conditional distributions (an irreducible Bayes error of about
  ``overlap / 2``), so accuracy saturates below 100 % and the gap between strategies is
  measured on the part of the task that can still be learnt.
* **Blend** - each sample is mixed with a sample of the next class,
  ``x ← (1 − blend)·x + blend·x_next``, which moves neighbouring classes towards each other
  (the discriminating signal is smaller, so fewer gradient coordinates per step carry it).

Everything is deterministic from ``seed``: the base generator is seeded by it and the
relabelling and blending draw from a second generator seeded by ``seed``.
The calibration of the ``hard`` preset against top-k compression (1000x at least 3 points
below dense, 10x within 1 point) is measured by ``benchmarks/calibrate_hard_images.py``.
"""

from __future__ import annotations

from typing import Any

import torch

from flexsync.data.dataset import Dataset
from flexsync.data.synthetic import synthetic_images

#: Named settings. ``easy`` is the default ``synthetic_images`` task (100 classes, 3 prototypes
#: each, noise 0.8), except that every prototype is drawn as its own mode. ``hard`` is the
#: calibrated one: 10 classes so that dense saturates (near its 87.5 % ceiling) within the short
#: budget, which is where 10x top-k has caught up and 1000x has not.
DIFFICULTY: dict[str, dict[str, Any]] = {
    "easy": {"classes": 100, "prototypes": 3, "noise": 0.8, "max_shift": 2,
             "overlap": 0.0, "blend": 0.0},
    "hard": {"classes": 10, "prototypes": 4, "noise": 1.0, "max_shift": 2,
             "overlap": 0.25, "blend": 0.2},
}


def _relabel(modes: torch.Tensor, y: torch.Tensor, classes: int, prototypes: int,
             overlap: float, g: torch.Generator) -> torch.Tensor:
    """Samples of shared modes flip to the next class w.p. 1/2 (after blending, so the image
    carries no information about the flip)."""
    n_shared = int(round(overlap * prototypes))
    shared = (modes % prototypes) < n_shared
    flip = shared & (torch.rand(len(modes), generator=g) < 0.5)
    return torch.where(flip, (y + 1) % classes, y)


def _blend(x: torch.Tensor, y: torch.Tensor, classes: int, blend: float,
           g: torch.Generator) -> torch.Tensor:
    """Mix every sample with a random sample (same split) of the next class."""
    if blend <= 0:
        return x
    order = torch.argsort(y, stable=True)
    counts = torch.bincount(y, minlength=classes)
    starts = torch.cumsum(counts, 0) - counts
    partner_class = (y + 1) % classes
    n_partner = counts[partner_class].clamp(min=1)
    pick = (torch.rand(len(y), generator=g) * n_partner).long().clamp(max=n_partner - 1)
    partner = order[starts[partner_class] + pick]
    has_partner = counts[partner_class] > 0
    mixed = (1 - blend) * x + blend * x[partner]
    return torch.where(has_partner.view(-1, 1, 1, 1), mixed, x)


def synthetic_images_hard(
    seed: int = 0,
    difficulty: str = "hard",
    train_size: int = 20000,
    test_size: int = 4000,
    image_size: int = 16,
    channels: int = 3,
    **overrides: Any,
) -> Dataset:
    """The synthetic image task at a named difficulty (``easy`` | ``medium`` | ``hard``).

    ``overrides`` replace single preset fields (``classes``, ``prototypes``, ``noise``,
    ``max_shift``, ``overlap``, ``blend``) so a calibration can sweep one knob.
    """
    if difficulty not in DIFFICULTY:
        raise ValueError(f"unknown difficulty {difficulty!r}; expected one of {sorted(DIFFICULTY)}")
    unknown = set(overrides) - set(DIFFICULTY[difficulty])
    if unknown:
        raise ValueError(f"unknown hard-image options {sorted(unknown)}")
    p = {**DIFFICULTY[difficulty], **overrides}
    classes, prototypes = int(p["classes"]), int(p["prototypes"])
    if not 0.0 <= p["overlap"] <= 1.0 or not 0.0 <= p["blend"] < 1.0:
        raise ValueError("overlap must be in [0, 1] and blend in [0, 1)")
    base = synthetic_images(seed=seed, classes=classes * prototypes, prototypes=1,
                            noise=float(p["noise"]), train_size=train_size, test_size=test_size,
                            image_size=image_size, channels=channels,
                            max_shift=int(p["max_shift"]))
    g = torch.Generator().manual_seed(seed + 7919)
    parts = []
    for x, modes in ((base.train_x, base.train_y), (base.test_x, base.test_y)):
        own = modes // prototypes
        x = _blend(x, own, classes, float(p["blend"]), g).contiguous()
        parts.append((x, _relabel(modes, own, classes, prototypes, float(p["overlap"]), g)))
    (train_x, train_y), (test_x, test_y) = parts
    shared = int(round(float(p["overlap"]) * prototypes)) / prototypes
    info = {"difficulty": difficulty, **p, "shared_mode_fraction": shared,
            "label_ambiguity_error": shared / 2}
    return Dataset("synthetic-images-hard", train_x, train_y, test_x, test_y, classes, info=info)
