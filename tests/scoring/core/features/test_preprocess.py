from __future__ import annotations

import numpy as np
import pytest

from patients.imaging.core.sector import MODEL_CROP, REDACTION, find_sector
from scoring.core.features.preprocess import (
    PreprocessConfig,
    canvas_to_original,
    geometry_for,
    model_input,
    model_input_views,
    normalise_intensity,
    preprocess_clip,
    to_grey,
)


def _fan_clip(t: int = 12, h: int = 200, w: int = 260, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Speckled convex fan + static burned-in text and a ruler outside it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    apex_y, apex_x = -60, w / 2
    r = np.hypot(yy - apex_y, xx - apex_x)
    ang = np.arctan2(xx - apex_x, yy - apex_y)
    fan = (r > 80) & (r < 250) & (np.abs(ang) < 0.6)
    frames = np.zeros((t, h, w), np.uint8)
    for i in range(t):
        frames[i][fan] = rng.integers(20, 200, fan.sum())
    frames[:, 5:15, 5:60] = 255  # text block (static)
    frames[:, 20:60, w - 6 : w - 4] = 180  # ruler (static)
    return frames, fan


def test_sector_excludes_static_overlays() -> None:
    frames, fan = _fan_clip()
    mask = find_sector(frames, MODEL_CROP).mask
    assert not mask[5:15, 5:60].any()
    assert not mask[20:60, -6:-4].any()
    inter = (mask & fan).sum() / fan.sum()
    assert inter > 0.97
    assert (mask & ~fan).sum() / fan.sum() < 0.05  # hull of a fan ~ the fan


def test_crop_resize_pad_and_inverse() -> None:
    frames, fan = _fan_clip()
    x, g = preprocess_clip(frames, PreprocessConfig(size=96))
    assert x.shape == (12, 96, 96) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    # wider than deep -> full width, top-aligned, zero padding below
    assert g.new_hw[1] == 96 and g.offset == (0, 0)
    assert np.all(x[:, g.new_hw[0] + 1 :, :] == 0)
    back = canvas_to_original(np.ones((96, 96), np.float32), g)
    assert back.shape == frames.shape[1:]
    assert back[~g.mask].max() == 0.0
    assert back[g.mask].mean() > 0.9


def test_deterministic_and_single_image() -> None:
    frames, _ = _fan_clip()
    a, _ = model_input(frames, PreprocessConfig(size=64))
    b, _ = model_input(frames, PreprocessConfig(size=64))
    assert np.array_equal(a, b)
    single, g = preprocess_clip(frames[0], PreprocessConfig(size=64))  # a still image
    assert single.shape == (1, 64, 64)


def test_blank_clip_falls_back_to_full_frame() -> None:
    z = np.zeros((3, 40, 50), np.uint8)
    assert find_sector(z, MODEL_CROP).mask.all()
    g = geometry_for(find_sector(z, MODEL_CROP).mask, 32)
    assert g.bbox == (0, 40, 0, 50)


def test_to_grey_and_intensity() -> None:
    rgb = np.zeros((2, 4, 4, 3), np.uint8)
    rgb[..., 0] = 100
    assert to_grey(rgb)[0, 0, 0] == int(100 * 0.299)
    x = np.full((2, 8, 8), 0.25, np.float32)
    assert normalise_intensity(x, "p99").max() == pytest.approx(0.25 / (0.25 + 1e-3), rel=1e-5)
    with pytest.raises(ValueError):
        normalise_intensity(x, "bogus")


@pytest.mark.parametrize("geometry", ["convex", "linear"])
def test_sector_on_phantoms(geometry: str) -> None:
    from patients.imaging.core.phantoms import phantom_cohort_clip

    ph = phantom_cohort_clip(2, seed=3, geometry=geometry, n_frames=10)  # type: ignore[arg-type]
    mask = find_sector(ph.frames, MODEL_CROP).mask
    truth = ph.sector_mask
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.9
    # Burned-in text / rulers outside the sector are masked (a marker touching the sector's
    # corner may fall inside its convex hull: allow a few percent of the text pixels).
    outside_text = ph.text_mask & ~truth
    assert (mask & outside_text).sum() <= 0.05 * outside_text.sum()


def test_views_share_the_sector_and_match_model_input() -> None:
    frames, _ = _fan_clip()
    cfg = PreprocessConfig(size=64)
    small, g, big = model_input_views(frames, cfg, hires_size=128)
    ref, g_ref = model_input(frames, cfg)
    assert np.array_equal(small, ref) and g.bbox == g_ref.bbox
    assert big is not None and big.shape == (12, 128, 128)
    # Same crop on twice the canvas: block-averaging the large view gives back the small one
    # up to the per-view gain normalisation (p99 of finer speckle is higher).
    pooled = big.reshape(12, 64, 2, 64, 2).mean((2, 4))
    inside = small > 0.05
    assert np.corrcoef(pooled[inside], small[inside])[0, 1] > 0.95
    assert np.array_equal(pooled > 0, small > 0) or np.mean((pooled > 0) != (small > 0)) < 0.02
    assert model_input_views(frames, cfg)[2] is None


def test_the_default_preprocessing_crops_with_model_crop() -> None:
    assert PreprocessConfig().sector() == MODEL_CROP and not MODEL_CROP.redact and REDACTION.redact
    custom = PreprocessConfig(max_probe_frames=8, max_threshold=20).sector()
    assert (custom.max_probe_frames, custom.max_threshold, custom.redact) == (8, 20, False)
