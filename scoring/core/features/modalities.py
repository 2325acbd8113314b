"""MCRFNet's three input modalities (Hu et al. 2021): grey level, K-means cluster map, gradient field.

Each builder takes one grey frame ``[H, W]`` (any float range; the scorer's frames are in [0, 1])
and returns a float32 map of the same shape in [0, 1]:

* **grey level**: the frame itself, min-max normalised (a constant frame gives zeros);
* **K-means cluster map**: the pixel intensities are clustered into ``k`` groups by Lloyd's
  algorithm in one dimension, with a deterministic start (centroids evenly spaced between the
  frame's minimum and maximum). Ties go to the lower centroid; an empty cluster keeps its centroid.
  Each pixel is replaced by the *rank* of its cluster, clusters ordered by centroid intensity,
  divided by ``k - 1``: darkest cluster 0, brightest 1. The map is a coarse segmentation
  (pleura and B-lines bright, rib shadows and intercostal tissue dark) that does not depend on gain;
* **gradient field**: the Sobel gradient magnitude ``sqrt(Gx^2 + Gy^2)`` (3x3 kernels
  ``[[-1,0,1],[-2,0,2],[-1,0,1]]`` and its transpose, applied as a correlation, borders
  replicated), divided by the frame's largest magnitude (a flat frame gives zeros). It marks the
  horizontal A-lines and pleura (vertical gradient) and the edges of B-lines (horizontal gradient).

:func:`modality_stack` stacks the three as channels ``[3, H, W]`` (or ``[T, 3, H, W]`` for a clip),
the input whose 1x1-convolution fusion is MCRFNet's first layer (``scoring.core.models.mcrfnet``).
"""
from __future__ import annotations

import numpy as np

#: Channel order of :func:`modality_stack` (and of MCRFNet's input).
MODALITIES: tuple[str, ...] = ("grey", "kmeans", "gradient")

_SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def _frame(frame: np.ndarray) -> np.ndarray:
    f = np.asarray(frame, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"a modality builder takes one grey frame [H, W], got shape {f.shape}")
    return f


def grey_level(frame: np.ndarray) -> np.ndarray:
    """The frame min-max normalised to [0, 1]; zeros for a constant frame."""
    f = _frame(frame)
    lo, hi = float(f.min()), float(f.max())
    out = (f - lo) / (hi - lo) if hi > lo else np.zeros_like(f)
    return out.astype(np.float32)


def kmeans_centroids(values: np.ndarray, k: int, max_iter: int = 50) -> np.ndarray:
    """1-D K-means (Lloyd) of ``values``: ``k`` centroids in ascending order.

    Start: ``linspace(min, max, k)``. Each step assigns every value to its nearest centroid (ties to
    the lower one) and moves each non-empty cluster's centroid to its members' mean; it stops when
    no centroid moves or after ``max_iter`` steps. The result is sorted ascending.
    """
    if k < 2:
        raise ValueError("k-means needs k >= 2")
    v = np.asarray(values, dtype=np.float64).ravel()
    centroids = np.linspace(float(v.min()), float(v.max()), k)
    for _ in range(max_iter):
        labels = np.argmin(np.abs(v[:, None] - centroids[None, :]), axis=1)
        sums = np.bincount(labels, weights=v, minlength=k)
        counts = np.bincount(labels, minlength=k)
        moved = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        if np.allclose(moved, centroids, rtol=0.0, atol=1e-12):
            break
        centroids = moved
    return np.sort(centroids)


def kmeans_map(frame: np.ndarray, k: int = 4, max_iter: int = 50) -> np.ndarray:
    """Each pixel's cluster rank (by centroid intensity) divided by ``k - 1``, in [0, 1]."""
    f = _frame(frame)
    centroids = kmeans_centroids(f, k, max_iter)
    labels = np.argmin(np.abs(f.ravel()[:, None] - centroids[None, :]), axis=1)
    return (labels.reshape(f.shape) / (k - 1)).astype(np.float32)


def sobel(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel ``(Gx, Gy)`` of a frame: correlation with the 3x3 kernels, borders replicated."""
    f = np.pad(_frame(frame), 1, mode="edge")
    h, w = f.shape[0] - 2, f.shape[1] - 2
    gx = np.zeros((h, w))
    gy = np.zeros((h, w))
    for dy in range(3):
        for dx in range(3):
            window = f[dy:dy + h, dx:dx + w]
            gx += _SOBEL_X[dy, dx] * window
            gy += _SOBEL_X[dx, dy] * window
    return gx, gy


def gradient_field(frame: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude divided by its maximum, in [0, 1]; zeros for a flat frame."""
    gx, gy = sobel(frame)
    mag = np.hypot(gx, gy)
    top = float(mag.max())
    return (mag / top if top > 0 else np.zeros_like(mag)).astype(np.float32)


def modality_stack(frames: np.ndarray, k: int = 4) -> np.ndarray:
    """``[H, W]`` -> ``[3, H, W]`` or ``[T, H, W]`` -> ``[T, 3, H, W]``: grey, K-means map, gradient."""
    arr = np.asarray(frames)
    if arr.ndim == 3:
        return np.stack([modality_stack(f, k) for f in arr]) if len(arr) else np.zeros((0, 3, *arr.shape[1:]), np.float32)
    return np.stack([grey_level(arr), kmeans_map(arr, k), gradient_field(arr)])
