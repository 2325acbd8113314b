"""The one sector finder: its two configurations and the hull rasteriser (the readings themselves
are pinned by tests/scoring/core/test_preprocess.py and tests/patients/imaging/core/test_deid.py)."""
from __future__ import annotations

import numpy as np
import pytest

from patients.imaging.core.phantoms import phantom_cohort_clip
from patients.imaging.core.sector import MODEL_CROP, REDACTION, find_sector, hull_mask


def test_hull_mask_fills_a_convex_outline_and_keeps_degenerate_masks() -> None:
    ring = np.zeros((20, 20), bool)
    ring[[2, 17], 2:18] = True
    ring[2:18, [2, 17]] = True
    hull = hull_mask(ring)
    assert hull[2:18, 2:18].all() and hull.sum() == 16 * 16
    line = np.zeros((5, 5), bool)
    line[2, 1:4] = True  # collinear: no hull, the mask itself
    assert np.array_equal(hull_mask(line), line)


def test_both_readings_find_a_phantom_sector() -> None:
    ph = phantom_cohort_clip(1, seed=2, n_frames=10)
    tight, wide = find_sector(ph.frames, MODEL_CROP), find_sector(ph.frames, REDACTION)
    assert tight.found and wide.found and tight.method == wide.method == "motion"
    assert (tight.mask & ph.sector_mask).sum() / ph.sector_mask.sum() > 0.9
    assert not (ph.sector_mask & ~wide.mask).any()  # redaction keeps the whole sector
    assert np.array_equal(find_sector(ph.frames[0], MODEL_CROP).mask, find_sector(ph.frames[:1], MODEL_CROP).mask)
    with pytest.raises(ValueError, match="grey frames"):
        find_sector(np.zeros((2, 8, 8, 3), np.uint8))
