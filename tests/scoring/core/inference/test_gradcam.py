"""The heat map explains the model that produced the clip score: it reads what the clip heads read,
its target is the score the bundle gives, and blurring where it points lowers that score's logit
more than blurring elsewhere (a map that only looked plausible would not)."""
from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from patients.imaging.core.phantoms import phantom_cohort_clip
from scoring.core.features.preprocess import model_input_views
from scoring.core.features.recipe import Recipe
from scoring.core.inference.gradcam import (
    CLIP_HEADS,
    FRAME_HEAD,
    _descriptor,
    clip_attribution,
    clip_logit,
    explained_model,
    hires_images,
    one_scale,
    read_frames,
    score_members,
)
from scoring.core.inference.scorer import Scorer, load_scorer

SHARE = 0.1  # the most-attributed share of each read frame's sector that is blurred
RANDOM_REGIONS = 8


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return load_scorer()


def _phantom(score: int, n_frames: int = 30, seed: int = 3) -> np.ndarray:
    return phantom_cohort_clip(score, seed=seed, n_frames=n_frames, rows=192, columns=256).frames


def test_which_model_and_frames_are_explained() -> None:
    default = Recipe()
    assert explained_model(default) == CLIP_HEADS and score_members(default) == ("hr:7", "hr:4+7", "hr:7+10")
    assert read_frames(default, 100) == [0, 33, 66, 99] and read_frames(default, 3) == [0, 1, 2]
    assert read_frames(Recipe(aggregator="argmax_mean"), 5) == [0, 1, 2, 3, 4]  # the frame head reads every frame
    assert explained_model(Recipe(aggregator="hr:7")) == CLIP_HEADS and score_members(Recipe(aggregator="hr:7")) == ("hr:7",)
    assert explained_model(Recipe(aggregator="argmax_mean")) == FRAME_HEAD
    with pytest.raises(ValueError, match="112-px|heat map"):
        explained_model(Recipe(aggregator="lr_all"))


@pytest.mark.parametrize("n_frames", [30, 3, 1])
def test_the_explained_inputs_are_what_the_clip_heads_read(scorer: Scorer, n_frames: int) -> None:
    frames = _phantom(2, n_frames)
    result = scorer.score_clip(frames)
    feat = scorer.features([frames])[0]
    _x, _g, xh = model_input_views(frames, scorer.cfg, scorer.recipe.hires_size)
    assert xh is not None
    uniq, slots, images = hires_images(xh, scorer.recipe.hires_frames)
    assert list(uniq) == read_frames(scorer.recipe, n_frames)
    names = score_members(scorer.recipe)
    with torch.no_grad():
        out = clip_logit(scorer.featurizer, scorer.bundle.clip_members, names, images, slots)
        # The read frames and the summary images alone rebuild the clip's hires descriptor ...
        np.testing.assert_allclose(_descriptor(out.maps, slots).numpy(), feat["hires"], atol=2e-5)
    # ... and the clip probabilities and score the bundle gives.
    np.testing.assert_allclose(out.probs, result.clip_probs, atol=1e-5)
    assert out.target == result.clip_score
    assert out.members == tuple(m for m in names if int(np.argmax(result.members[m])) == result.clip_score)
    p = float(result.clip_probs[result.clip_score])
    assert float(out.logit) == pytest.approx(np.log(p / (1 - p)), abs=1e-4)


def test_a_frame_aggregator_is_explained_by_the_frame_head_on_every_frame(scorer: Scorer) -> None:
    bundle = dataclasses.replace(scorer.bundle, recipe=dataclasses.replace(scorer.recipe, aggregator="argmax_mean"))
    frame_scorer = Scorer(bundle)
    frames = _phantom(1, 5)
    result = frame_scorer.score_clip(frames)
    g = frame_scorer.gradcam(frames)
    assert g.model == FRAME_HEAD and g.indices == (0, 1, 2, 3, 4) and g.target == result.clip_score
    assert g.target == int(np.argmax(result.frame_probs.mean(0)))  # what argmax_mean made of the curve
    assert len(g.maps) == 5 and all(m.shape == frames.shape[1:] and m.min() >= 0.0 for m in g.maps)
    assert max(float(m.max()) for m in g.maps) == 1.0  # one scale for all frames
    assert frame_scorer.gradcam(frames, target=3).target == 3


def test_one_scale_keeps_the_frames_comparable() -> None:
    m = one_scale(np.array([[[np.nan, -1.0], [2.0, np.inf]], [[1.0, 0.5], [0.0, 0.0]]]))
    assert np.isfinite(m).all() and m.max() == 1.0 and m.min() == 0.0
    assert m[1, 0, 0] == 0.5  # the weaker frame stays weaker
    assert one_scale(np.zeros((2, 3, 3))).max() == 0.0


def _blur(image: np.ndarray) -> np.ndarray:
    return F.avg_pool2d(torch.from_numpy(image)[None, None], 15, 1, 7, count_include_pad=False)[0, 0].numpy()


def _top(values: np.ndarray, sector: np.ndarray, n: int) -> np.ndarray:
    order = np.argsort(np.where(sector, values, -np.inf).ravel())[::-1][:n]
    region = np.zeros(values.size, bool)
    region[order] = True
    return region.reshape(values.shape)


def _drops(scorer: Scorer, frames: np.ndarray, seed: int) -> tuple[float, list[float]]:
    """Logit drops of the shown score when the top ``SHARE`` of each read frame's sector (by the
    map) is blurred, and when as many pixels of random smooth regions of the sector are."""
    _x, _g, xh = model_input_views(frames, scorer.cfg, scorer.recipe.hires_size)
    assert xh is not None
    heads, names = scorer.bundle.clip_members, score_members(scorer.recipe)
    att = clip_attribution(scorer.featurizer, heads, names, xh)
    _uniq, slots, images = hires_images(xh, scorer.recipe.hires_frames)

    def logit(imgs: np.ndarray) -> float:
        with torch.no_grad():
            return float(clip_logit(scorer.featurizer, heads, names, imgs, slots, att.target).logit)

    def masked(pick: Iterator[np.ndarray]) -> float:
        imgs = images.copy()
        for j in range(len(att.indices)):  # the read frames; the summary images stay as they are
            sector = images[j] > 0
            region = _top(next(pick), sector, int(SHARE * sector.sum()))
            imgs[j][region] = _blur(images[j])[region]
        return base - logit(imgs)

    base = logit(images)
    assert base == pytest.approx(att.logit, abs=1e-4)
    gen = torch.Generator().manual_seed(seed)
    size = images.shape[-1]

    def noise() -> Iterator[np.ndarray]:
        while True:
            coarse = torch.rand((1, 1, 14, 14), generator=gen)
            yield F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)[0, 0].numpy()

    return masked(iter(att.canvas_maps)), [masked(noise()) for _ in range(RANDOM_REGIONS)]


def _faithful(drops: list[tuple[float, list[float]]]) -> None:
    """The map beats chance: on at least two thirds of the clips blurring its top region lowers the
    logit more than blurring random regions does on average, and on average by 0.02 or more."""
    wins = sum(a > np.mean(r) for a, r in drops)
    margin = float(np.mean([a - np.mean(r) for a, r in drops]))
    print("map drop, random mean drop:", [(round(a, 3), round(float(np.mean(r)), 3)) for a, r in drops],
          f"wins {wins}/{len(drops)}, mean margin {margin:.3f}")
    assert 3 * wins >= 2 * len(drops) and margin >= 0.02


def test_blurring_where_the_map_points_lowers_the_clip_logit_more_than_elsewhere(scorer: Scorer) -> None:
    # Measured: wins 3/4, mean margin 0.05 (the phantoms are unlike the training clips: their
    # logits are near 0 and blurring anywhere in the score-2 and -3 phantoms raises them).
    _faithful([_drops(scorer, _phantom(score, seed=3), seed=score) for score in range(4)])


def test_the_same_on_real_clips(scorer: Scorer, shared_data: Path) -> None:
    # Measured: wins 5/6, mean margin 0.08. On 14 clips (every 25th and every 40th) with other random
    # regions: 14/14, margin 0.11; Grad-CAM++ (per tap, the same target) 7/14, margin 0.01.
    from patients.imaging.core.reader import read_clip

    root = shared_data / "covid-blues"
    rows = list(csv.DictReader((root / "severity.csv").open()))[::40]
    _faithful([_drops(scorer, read_clip(root / "lus_videos" / f"{r['video_file']}.mp4").frames, seed=i)
               for i, r in enumerate(rows)])
