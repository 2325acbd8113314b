"""A prepared clip (``scoring.core.features.prepared``) stored and read back scores exactly as the
clip itself: the model input through its uint8 steps, the hires pass's images, the hand-crafted
features; a file of another preparation, or a damaged one, reads as None."""
from __future__ import annotations

import io

import numpy as np
import pytest

from patients.imaging.core.phantoms import phantom_cohort_clip
from scoring.core.features.prepared import (
    PREPARED_FORMAT,
    Prepared,
    prepare_clip,
    prepare_key,
    prepared_bytes,
    prepared_read,
)
from scoring.core.features.preprocess import (
    _preprocess,
    apply_geometry,
    dequantise,
    geometry_for,
    model_input_views,
    normalise_intensity,
    quantise,
    to_grey,
    to_steps,
)
from scoring.core.features.recipe import Recipe
from scoring.core.inference.scorer import Scorer, load_scorer


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return load_scorer()


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    return [phantom_cohort_clip(score, seed=score, n_frames=n, rows=200, columns=180).frames
            for score, n in ((0, 9), (2, 14), (3, 6))]


def test_steps_give_back_the_quantised_values_bit_for_bit() -> None:
    x = np.random.default_rng(0).random((5, 33, 31), dtype=np.float32)
    q = quantise(x)
    steps = to_steps(q)
    assert steps.dtype == np.uint8
    assert np.array_equal(dequantise(steps), q)
    assert np.array_equal(steps, np.round(x * 255).astype(np.uint8))


def test_the_views_are_the_formula_they_were(scorer: Scorer, clips: list[np.ndarray]) -> None:
    """model_input_views goes through the steps now: the same bits as normalising the quantised canvas."""
    cfg, size = scorer.cfg, scorer.recipe.hires_size
    for clip in clips:
        f = to_grey(clip)
        x, geom, crop = _preprocess(f, cfg)
        want = normalise_intensity(quantise(x), cfg.intensity)
        want_h = normalise_intensity(quantise(apply_geometry(f, geometry_for(geom.mask, size), crop)), cfg.intensity)
        got, _geom, got_h = model_input_views(clip, cfg, size)
        assert np.array_equal(got, want) and got_h is not None and np.array_equal(got_h, want_h)


def test_a_stored_prepared_clip_scores_exactly_as_the_clip(scorer: Scorer, clips: list[np.ndarray]) -> None:
    fresh = scorer.score_clips(clips)
    stored = [prepared_bytes(scorer.prepare_views(c)) for c in clips]
    read = [prepared_read(io.BytesIO(b), scorer.prepare_key, scorer.cfg) for b in stored]
    assert all(isinstance(p, Prepared) for p in read)
    again = scorer.score_clips([lambda p=p: p for p in read])
    for a, b in zip(fresh, again, strict=True):
        assert np.array_equal(a.frame_probs, b.frame_probs)
        assert np.array_equal(a.clip_probs, b.clip_probs) and a.clip_score == b.clip_score
    # What is stored: the steps (a quarter of float32) and the k + 3 images of the hires pass.
    p = read[1]
    assert p is not None and p.steps.dtype == np.uint8 and p.steps.shape == (14, 112, 112)
    assert p.hires_images is not None and p.hires_images.shape == (scorer.recipe.hires_frames + 3, 224, 224)
    assert p.hand is not None and p.hand.shape[0] == 14


def test_another_preparation_or_a_damaged_file_reads_as_none(scorer: Scorer, clips: list[np.ndarray]) -> None:
    blob = prepared_bytes(scorer.prepare_views(clips[0]))
    assert prepared_read(io.BytesIO(blob), "0" * 16, scorer.cfg) is None
    assert prepared_read(io.BytesIO(blob[: len(blob) // 2]), scorer.prepare_key, scorer.cfg) is None
    assert prepared_read(io.BytesIO(b"not a prepared clip"), scorer.prepare_key, scorer.cfg) is None
    other = io.BytesIO()
    np.savez(other, format=np.array("lusweb-other"), key=np.array(scorer.prepare_key), steps=np.zeros((1, 2, 2), np.uint8))
    assert prepared_read(io.BytesIO(other.getvalue()), scorer.prepare_key, scorer.cfg) is None
    assert PREPARED_FORMAT in str(np.load(io.BytesIO(blob))["format"])


def test_the_key_follows_what_the_preparation_depends_on(scorer: Scorer) -> None:
    recipe, cfg = scorer.recipe, scorer.cfg
    assert prepare_key(recipe, cfg) == scorer.prepare_key == prepare_key(Recipe(**vars(recipe)), cfg)
    changed = Recipe(**{**vars(recipe), "hires_size": 256})
    assert prepare_key(changed, changed.preprocess()) != scorer.prepare_key
    no_hand = Recipe(**{**vars(recipe), "hand": False})
    assert prepare_key(no_hand, no_hand.preprocess()) != scorer.prepare_key
    # Heads of another fit (a site model of the same recipe) read the same prepared clips.
    refit = Recipe(**{**vars(recipe), "clip_c": recipe.clip_c * 10})
    assert prepare_key(refit, refit.preprocess()) == scorer.prepare_key


def test_a_scorer_refuses_a_clip_prepared_otherwise(scorer: Scorer, clips: list[np.ndarray]) -> None:
    other = Recipe(**{**vars(scorer.recipe), "hires_size": 0})
    prepared = prepare_clip(clips[0], other, other.preprocess())
    assert prepared.hires_images is None
    with pytest.raises(ValueError, match="another preprocessing"):
        scorer.score_clips([lambda: prepared])
