from __future__ import annotations

import numpy as np

from scoring.core.features.handcrafted import HAND_NAMES, artefact_masks, handcrafted_features


def test_handcrafted_shapes_and_physics() -> None:
    rng = np.random.default_rng(0)
    s = 96
    base = np.zeros((6, s, s), np.float32)
    base[:, :, 10:86] = rng.uniform(0.02, 0.08, (6, s, 76))
    base[:, 20:23, 10:86] = 0.9  # pleura
    a_lines = base.copy()
    a_lines[:, 40:42, 10:86] = 0.5  # A-line at 2x pleura depth
    b_lines = base.copy()
    b_lines[:, 23:, 40:44] = 0.7  # vertical B-line from the pleura to the bottom
    fa = handcrafted_features(a_lines)
    fb = handcrafted_features(b_lines)
    assert fa.shape == (6, len(HAND_NAMES)) and np.isfinite(fa).all()
    i = HAND_NAMES.index
    assert fa[:, i("aline2_peak")].mean() > fb[:, i("aline2_peak")].mean()
    assert fb[:, i("vline_energy")].mean() > fa[:, i("vline_energy")].mean()
    assert fb[:, i("vline_consistency")].mean() > 0.5
    one = handcrafted_features(a_lines[:1])
    assert one.shape == (1, len(HAND_NAMES)) and np.isfinite(one).all()


def test_artefact_masks_draw_the_pleura_and_the_b_line_the_features_find() -> None:
    rng = np.random.default_rng(0)
    s = 96
    x = np.zeros((3, s, s), np.float32)
    x[:, :, 10:86] = rng.uniform(0.02, 0.08, (3, s, 76))  # the sector: columns 10-85
    x[:, 20:23, 10:86] = 0.9  # pleura (smoothed profile peaks at row 21)
    x[:, 23:, 40:44] = 0.7  # a B-line from the pleura to the bottom
    m = artefact_masks(x)
    assert m.shape == (3, 2, s, s) and m.dtype == np.float32 and set(np.unique(m)) <= {0.0, 1.0}
    # Central 60 % of the sector: columns 10 + 0.2 * 75 = 25 to 10 + 0.8 * 75 = 70.
    pleura = np.zeros((s, s), np.float32)
    pleura[19:24, 25:71] = 1.0  # row 21 +- 2
    b_line = np.zeros((s, s), np.float32)
    b_line[25:95, 40:44] = 1.0  # from 4 rows below the pleura to the last sector row (95, excluded)
    for frame in m:
        np.testing.assert_array_equal(frame[0], pleura)
        np.testing.assert_array_equal(frame[1], b_line)
    assert artefact_masks((x * 255).astype(np.uint8)).sum() == m.sum()  # uint8 frames read alike


def test_without_a_b_line_the_vertical_mask_is_empty() -> None:
    rng = np.random.default_rng(1)
    x = np.zeros((2, 64, 64), np.float32)
    x[:, :, 8:56] = rng.uniform(0.02, 0.08, (2, 64, 48))
    x[:, 12:14, 8:56] = 0.9
    m = artefact_masks(x)
    assert m[:, 1].sum() == 0 and m[:, 0].sum() > 0
