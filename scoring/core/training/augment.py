"""Ultrasound-specific augmentation of training clips (issue 19, direction "usaugment").

The transforms are the ``usaugment`` package's (Tupper et al. 2025, "Revisiting data augmentation
for ultrasound images"): depth attenuation, Gaussian shadow, haze and speckle reduction, in the
order of the package's README, each with its default parameter ranges. What is added here:

* **one draw per clip copy.** A clip is one acquisition: a shadow or a haze does not jump between
  frames. The package draws its parameters from Python's and NumPy's global generators inside
  ``apply``, so both are re-seeded with the copy's seed before every frame (and restored after),
  which gives every frame of a copy the same parameters, shadow centre and haze pattern.
* **which transforms a copy gets**: each with probability 0.5 (the package's default ``p``), from
  the copy's own generator.
* **the scan mask**: the pixels of the canvas that are inside the sector in some frame, holes
  filled (the canvases are zero outside the sector; an anechoic region inside it is not).

Frames are float [T, S, S] in [0, 1] (a canvas before the per-clip gain normalisation, as the
scanner would have produced them).
"""
from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import binary_fill_holes

#: The transforms, in the order usaugment's README composes them.
TRANSFORMS = ("depth_attenuation", "gaussian_shadow", "haze_artifact", "speckle_reduction")
#: Probability that a copy gets each transform (usaugment's default ``p``).
P_TRANSFORM = 0.5


@dataclass(frozen=True)
class Draw:
    """One augmented copy of a clip: the transforms it gets and the seed of their parameters."""

    transforms: tuple[str, ...]
    seed: int


def draw(clip_seed: int, copy: int) -> Draw:
    """The ``copy``-th augmented copy of the clip whose seed is ``clip_seed`` (deterministic)."""
    rng = np.random.default_rng([int(clip_seed), int(copy)])
    on = rng.random(len(TRANSFORMS)) < P_TRANSFORM
    return Draw(tuple(name for name, flag in zip(TRANSFORMS, on, strict=True) if flag),
                int(rng.integers(0, 2**31 - 1)))


def scan_mask(frames: np.ndarray) -> np.ndarray:
    """bool [S, S]: the canvas pixels inside the sector (non-zero in some frame, holes filled)."""
    return np.asarray(binary_fill_holes(np.asarray(frames).max(0) > 0), bool)


def _transforms(names: Sequence[str]) -> list[Any]:
    # albumentations asks PyPI for a newer version on import (2-s timeout, a warning offline):
    # training never phones home.
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    # lazy: usaugment imports albumentations and OpenCV, which only this experiment needs
    from usaugment.albumentations import DepthAttenuation, GaussianShadow, HazeArtifact, SpeckleReduction

    make = {"depth_attenuation": DepthAttenuation, "gaussian_shadow": GaussianShadow,
            "haze_artifact": HazeArtifact, "speckle_reduction": SpeckleReduction}
    return [make[name](p=1.0) for name in names]


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed Python's and NumPy's global generators (usaugment draws from them); restore them after."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        random.seed(seed)
        np.random.seed(seed)
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def augment_clip(frames: np.ndarray, d: Draw, mask: np.ndarray | None = None) -> np.ndarray:
    """The copy ``d`` of a clip: float32 [T, S, S] in [0, 1], zero outside the scan mask, every frame
    transformed with the same parameters. A draw without transforms returns the frames unchanged."""
    x = np.asarray(frames, np.float32)
    if not d.transforms:
        return x.copy()
    m = scan_mask(x) if mask is None else np.asarray(mask, bool)
    chain = _transforms(d.transforms)
    out = np.empty_like(x)
    for t, frame in enumerate(x):
        img = frame
        with _seeded(d.seed):
            for transform in chain:
                img = transform.apply(img, scan_mask=m)
        out[t] = np.where(m, np.clip(img, 0.0, 1.0), 0.0)
    return out
