"""usaugment copies of a clip (issue 19, direction 3): hand-computed maps, one draw per copy."""
from __future__ import annotations

import random

import numpy as np

from scoring.core.training.augment import TRANSFORMS, Draw, augment_clip, draw, scan_mask


def _clip(frames: int = 4, size: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros((frames, size, size), np.float32)
    x[:, 4:28, 6:26] = 0.2 + 0.6 * rng.random((frames, 24, 20), dtype=np.float32)
    x[:, 14:17, 14:17] = 0.0  # an anechoic patch inside the sector: still scanned
    return x


def test_the_scan_mask_is_the_sector_with_its_holes_filled() -> None:
    m = scan_mask(_clip())
    assert m.sum() == 24 * 20 and m[4:28, 6:26].all() and m[15, 15]
    assert not m[:4].any() and not m[:, :6].any() and not m[28:].any() and not m[:, 26:].any()


def test_depth_attenuation_is_the_papers_decay_from_the_probe_with_one_draw_per_copy() -> None:
    x = _clip()
    out = augment_clip(x, Draw(("depth_attenuation",), seed=11))
    random.seed(11)
    rate = random.uniform(0.0, 3.0)  # usaugment's default range, drawn as the package draws it
    g = np.linspace(0, 1, 32)
    xv, yv = np.meshgrid(g, g)
    decay = np.exp(-rate * np.sqrt((xv - 0.5) ** 2 + yv**2))  # probe at the top centre
    expected = np.where(scan_mask(x), x * decay, 0.0)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert out[0, 27, 16] < x[0, 27, 16] * 0.9 or rate < 0.15  # deep pixels lose more than shallow ones


def test_every_frame_of_a_copy_gets_the_same_transform() -> None:
    still = np.repeat(_clip(frames=1), 3, axis=0)
    out = augment_clip(still, Draw(TRANSFORMS, seed=5))
    assert np.array_equal(out[0], out[1]) and np.array_equal(out[0], out[2])
    assert not np.array_equal(out[0], still[0])
    assert out.dtype == np.float32 and out.min() >= 0.0 and out.max() <= 1.0
    assert not out[:, :4].any() and not out[:, :, 26:].any()  # nothing leaks outside the sector


def test_copies_are_reproducible_and_leave_the_global_generators_alone() -> None:
    x = _clip()
    np.random.seed(3)
    random.seed(3)
    before = (np.random.random(), random.random())
    np.random.seed(3)
    random.seed(3)
    a = augment_clip(x, Draw(TRANSFORMS, seed=8))
    assert (np.random.random(), random.random()) == before
    assert np.array_equal(a, augment_clip(x, Draw(TRANSFORMS, seed=8)))
    assert not np.array_equal(a, augment_clip(x, Draw(TRANSFORMS, seed=9)))


def test_a_copy_without_transforms_is_the_clip() -> None:
    x = _clip()
    out = augment_clip(x, Draw((), seed=1))
    assert np.array_equal(out, x) and out is not x


def test_draws_pick_each_transform_half_of_the_time_in_the_packages_order() -> None:
    draws = [draw(1234, c) for c in range(400)]
    assert draws[7] == draw(1234, 7) and draws[7] != draw(1235, 7)
    for name in TRANSFORMS:
        share = np.mean([name in d.transforms for d in draws])
        assert 0.42 < share < 0.58, (name, share)
    for d in draws:
        assert list(d.transforms) == [t for t in TRANSFORMS if t in d.transforms]
