"""scoring.core.physics: sector geometry, beam-space resampling and physics features on phantoms."""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from patients.imaging.core.phantoms import PhantomSpec, phantom_cohort_clip, render_phantom
from scoring.core.physics import (
    Geometry,
    beam_images,
    clip_physics_features,
    polar_frames,
    sector_geometry,
)

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "covid-blues"


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture(scope="module")
def convex0():
    return render_phantom(PhantomSpec(geometry="convex", score=0, n_frames=20, seed=3))


def test_convex_geometry_matches_the_phantom(convex0) -> None:
    g = sector_geometry(convex0.frames)
    rows, cols = convex0.frames.shape[1:]
    assert g.kind == "convex" and g.is_convex
    # phantoms._sector: apex at ((cols-1)/2, 0.05*rows - 0.3*rows), half-angle <= 35 degrees.
    assert abs(g.apex_x - (cols - 1) / 2) < 3
    assert abs(g.apex_y - (0.05 - 0.3) * rows) < 0.04 * rows
    r1 = 0.3 * rows + 0.92 * rows
    half = min(math.asin(min(0.48 * cols / r1, 1.0)), math.radians(35))
    assert abs((g.theta_max - g.theta_min) / 2 - half) < math.radians(3)
    assert abs(g.r_min - 0.3 * rows) < 0.03 * rows and abs(g.r_max - r1) < 0.03 * rows
    assert _iou(g.mask, convex0.sector_mask) > 0.9
    assert not (g.mask & convex0.text_mask).any()  # burned-in text is not part of the sector


def test_linear_geometry_falls_back_to_the_rectangle() -> None:
    ph = phantom_cohort_clip(1, seed=2, geometry="linear", n_frames=12)
    g = sector_geometry(ph.frames)
    assert g.kind == "linear"
    ys, xs = np.nonzero(ph.sector_mask)
    assert abs(g.r_min - ys.min()) <= 4 and abs(g.r_max - ys.max()) <= 4
    assert abs(g.theta_min - xs.min()) <= 4 and abs(g.theta_max - xs.max()) <= 4


def test_polar_transform_turns_the_pleural_arc_into_a_row(convex0) -> None:
    g = sector_geometry(convex0.frames)
    pol, valid = polar_frames(convex0.frames, g, n_r=128, n_theta=64)
    assert pol.shape == (20, 128, 64) and pol.dtype == np.float32 and valid.all()
    img = pol.mean(axis=0)
    band = slice(5, 64)
    rows = band.start + np.argmax(img[band, 4:-4], axis=0)  # brightest row per angle = pleura
    assert np.ptp(rows) <= 3  # an arc in the image, a straight row in beam space
    assert abs(np.median(rows) / 127 - convex0.pleura_depth) < 0.03
    # The first A-line (2x the skin-pleura distance) is a row too.
    a1 = int(round(2 * np.median(rows)))
    prof = img[:, 4:-4].mean(axis=1)
    assert prof[a1 - 2:a1 + 3].max() > 1.3 * prof[a1 - 10:a1 - 5].mean()


def test_features_have_a_fixed_named_layout_and_run_on_stills(convex0) -> None:
    v, names = clip_physics_features(convex0.frames)
    assert v.dtype == np.float32 and v.shape == (len(names),) and len(set(names)) == len(names)
    assert np.isfinite(v).all()
    one, names1 = clip_physics_features(convex0.frames[:1])
    still, names2 = clip_physics_features(convex0.frames[0])  # a 2-D still image
    assert names1 == names == names2 and np.isfinite(one).all()
    np.testing.assert_allclose(one, still)
    lin, names3 = clip_physics_features(phantom_cohort_clip(2, seed=4, geometry="linear", n_frames=6).frames)
    assert names3 == names and np.isfinite(lin).all() and lin[names.index("convex")] == 0
    f = dict(zip(names, v))
    assert abs(f["pleura_depth"] - convex0.pleura_depth) < 0.03 and f["convex"] == 1


def test_features_separate_score_0_from_score_3_in_the_physical_direction() -> None:
    feats: dict[int, list[dict[str, float]]] = {0: [], 3: []}
    for score in (0, 3):
        for seed in range(4):
            v, names = clip_physics_features(phantom_cohort_clip(score, seed=seed, n_frames=16).frames)
            feats[score].append(dict(zip(names, v)))

    def mean(score: int, name: str) -> float:
        return float(np.mean([f[name] for f in feats[score]]))

    # A-lines (periodic horizontal reverberations) in aerated lung, white lung in score 3.
    assert mean(0, "aline_autocorr_mean") > mean(3, "aline_autocorr_mean")
    assert mean(0, "h_over_v_mean") > mean(3, "h_over_v_mean")
    assert mean(3, "deep_to_wall_mean") > mean(0, "deep_to_wall_mean")
    assert mean(3, "white_cover_mean") > mean(0, "white_cover_mean")


def test_fast_enough_for_a_75_frame_clip() -> None:
    ph = phantom_cohort_clip(2, seed=1, n_frames=75, rows=350, columns=350)
    clip_physics_features(ph.frames[:2])  # warm-up
    t = time.perf_counter()
    clip_physics_features(ph.frames)
    assert time.perf_counter() - t < 3.0  # ~0.1-0.2 s on an idle core; generous for loaded CI


def test_beam_images_mark_the_rib_shadow_columns() -> None:
    frames = np.full((3, 200, 200), 60, dtype=np.uint8)
    frames[:, :, :10] = 0  # a black border left and right: a linear rectangle
    frames[:, :, -10:] = 0
    frames[:, 30:, 90:120] = 5  # a rib shadow below row 30
    frames[1] += 1  # some temporal change
    g = sector_geometry(frames)
    assert isinstance(g, Geometry) and g.kind == "linear"
    pol, lit = beam_images(frames, g, n_r=64, n_theta=64)
    assert pol.shape[0] == 3 and 0.05 < 1 - lit.mean() < 0.3


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/covid-blues is absent (fresh clone)")
def test_real_lumify_clip_has_a_convex_fan_with_the_apex_above_the_image() -> None:
    from patients.imaging.core.reader import read_clip

    frames = read_clip(DATA / "lus_videos" / "patient_1_L1.mp4").frames
    g = sector_geometry(frames)
    assert g.kind == "convex" and g.apex_y < 0 and 150 < g.apex_x < 200
    assert math.radians(25) < (g.theta_max - g.theta_min) / 2 < math.radians(40)
    v, _ = clip_physics_features(frames)
    assert np.isfinite(v).all()
