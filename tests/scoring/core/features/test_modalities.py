"""MCRFNet's modality builders against hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest

from scoring.core.features.modalities import (
    gradient_field,
    grey_level,
    kmeans_centroids,
    kmeans_map,
    modality_stack,
    sobel,
)


def test_kmeans_three_clusters_ranked_by_intensity() -> None:
    # 6 x 0.0, 2 x 0.2, 4 x 0.6, 4 x 1.0; k=3 starts at [0, 0.5, 1]: 0.2 -> 0 (0.2 < 0.3), 0.6 -> 0.5.
    # Means: (0*6 + 0.2*2)/8 = 0.05, 0.6, 1.0; the next assignment is the same, so it stops.
    frame = np.array([[0.0, 0.0, 0.0, 0.0],
                      [0.0, 0.0, 0.2, 0.2],
                      [0.6, 0.6, 0.6, 0.6],
                      [1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_allclose(kmeans_centroids(frame, 3), [0.05, 0.6, 1.0])
    expected = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [0.5, 0.5, 0.5, 0.5], [1, 1, 1, 1]])
    np.testing.assert_array_equal(kmeans_map(frame, 3), expected.astype(np.float32))


def test_kmeans_lloyd_moves_a_pixel_to_the_other_cluster() -> None:
    # 13 x 0.0, then 0.49, 0.6, 1.0; k=2 starts at [0, 1]: 0.49 -> cluster 0 (0.49 < 0.51).
    # Step 1: c0 = 0.49/14 = 0.035, c1 = (0.6+1)/2 = 0.8; 0.49 is now nearer c1 (0.31 < 0.455).
    # Step 2: c0 = 0, c1 = (0.49+0.6+1)/3 = 0.696667; stable.
    frame = np.zeros((4, 4))
    frame[3, 1:] = [0.49, 0.6, 1.0]
    np.testing.assert_allclose(kmeans_centroids(frame, 2), [0.0, 2.09 / 3])
    expected = np.zeros((4, 4), np.float32)
    expected[3, 1:] = 1.0
    np.testing.assert_array_equal(kmeans_map(frame, 2), expected)
    # a single Lloyd step would have left 0.49 in the dark cluster
    np.testing.assert_allclose(kmeans_centroids(frame, 2, max_iter=1), [0.035, 0.8])


def test_kmeans_map_ranks_not_labels_and_constant_frame() -> None:
    frame = np.array([[5.0, 1.0], [3.0, 1.0]])  # k=3 from [1, 3, 5]: each value its own cluster
    np.testing.assert_array_equal(kmeans_map(frame, 3), [[1.0, 0.0], [0.5, 0.0]])
    np.testing.assert_array_equal(kmeans_map(np.full((3, 3), 0.7), 4), np.zeros((3, 3)))
    with pytest.raises(ValueError):
        kmeans_map(frame, 1)


def test_sobel_on_a_horizontal_ramp() -> None:
    # I = x: interior Gx = (1+2+1) * (I[x+1] - I[x-1]) = 4*2 = 8; replicated border: 4*1 = 4; Gy = 0.
    ramp = np.tile(np.arange(4.0), (4, 1))
    gx, gy = sobel(ramp)
    np.testing.assert_array_equal(gx, np.tile([4.0, 8.0, 8.0, 4.0], (4, 1)))
    np.testing.assert_array_equal(gy, np.zeros((4, 4)))
    np.testing.assert_allclose(gradient_field(ramp), np.tile([0.5, 1.0, 1.0, 0.5], (4, 1)))


def test_sobel_on_a_step_down_the_frame() -> None:
    # rows 0-1 dark, rows 2-3 bright: Gy = 4 * (I[y+1] - I[y-1]) = 0, 4, 4, 0 (positive: brighter below).
    step = np.zeros((4, 4))
    step[2:] = 1.0
    gx, gy = sobel(step)
    np.testing.assert_array_equal(gy, np.repeat([[0.0], [4.0], [4.0], [0.0]], 4, axis=1))
    np.testing.assert_array_equal(gx, np.zeros((4, 4)))
    np.testing.assert_array_equal(gradient_field(step), np.repeat([[0.0], [1.0], [1.0], [0.0]], 4, axis=1))


def test_gradient_magnitude_on_a_diagonal_ramp() -> None:
    # I = x + y: interior Gx = Gy = 8 -> 8*sqrt(2); corner (0,0): Gx = Gy = 4 -> 4*sqrt(2) -> 0.5.
    diag = np.add.outer(np.arange(4.0), np.arange(4.0))
    field = gradient_field(diag)
    assert field[1, 1] == pytest.approx(1.0) and field[0, 0] == pytest.approx(0.5)
    assert field[0, 1] == pytest.approx(np.hypot(8, 4) / np.hypot(8, 8))  # Gx = 8, Gy = 4 on the top edge
    np.testing.assert_array_equal(gradient_field(np.ones((3, 3))), np.zeros((3, 3)))


def test_grey_level_and_stack() -> None:
    frame = np.array([[2.0, 4.0], [6.0, 10.0]])
    np.testing.assert_allclose(grey_level(frame), [[0.0, 0.25], [0.5, 1.0]])
    clip = np.stack([frame, frame * 2])
    stack = modality_stack(clip, k=2)
    assert stack.shape == (2, 3, 2, 2) and stack.dtype == np.float32
    np.testing.assert_allclose(stack[0, 0], grey_level(frame))
    np.testing.assert_array_equal(stack[1, 1], kmeans_map(frame * 2, 2))
    np.testing.assert_allclose(stack[0, 2], gradient_field(frame))
    assert modality_stack(frame).shape == (3, 2, 2)
    with pytest.raises(ValueError):
        grey_level(np.zeros(4))
