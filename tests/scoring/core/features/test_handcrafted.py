from __future__ import annotations

import numpy as np

from scoring.core.features.handcrafted import HAND_NAMES, handcrafted_features


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
