"""Site training on synthetic features: the candidate's CV is the training command's, the champion
is judged on the same folds, the learning curve keeps its test folds, too few readings are refused."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from scoring.core.features.recipe import Recipe
from scoring.core.stats import classification_report
from scoring.core.training.cv import cross_validate, cv_splits
from scoring.core.training.fitting import clip_score_reads_frame_heads, fit_bundle
from scoring.core.training.site import (
    SiteData,
    SiteDataError,
    _subsample,
    site_data_check,
    site_evaluate,
    site_fit,
)
from tests.scoring.core.training.test_fitting import RECIPE, _synthetic


def _data(n_patients: int = 12, pooled_patients: int = 0, seen: bool = False) -> SiteData:
    feats, y, fnd, _ = _synthetic(n_clips=4 * (n_patients + pooled_patients), d=3, shift=2.0)
    groups = [f"CB-{i // 4}" for i in range(len(y))]  # four clips a patient, scores 0-3 each
    site = np.array([i // 4 < n_patients for i in range(len(y))])
    return SiteData(feats, y, fnd, groups, site, np.full(len(y), seen))


def _always(score: int) -> Any:
    probs = np.full(4, 0.1)
    probs[score] = 0.7
    return lambda feat: {"clip_score": score, "clip_probs": probs}


def test_candidate_cv_is_the_training_commands_on_the_same_folds() -> None:
    data = _data(12, pooled_patients=3)
    report = site_evaluate(data, RECIPE, _always(1), seeds=(0,), k=4)
    command = cross_validate(data.feats, data.y, data.findings, data.groups, RECIPE, seeds=(0,), k=4,
                             eval_mask=data.site)
    for key in ("accuracy", "within1", "spearman_expected", "qwk", "ece"):
        assert report["cv"][key]["per_seed"] == command[key]["per_seed"], key  # type: ignore[index]
    assert report["cv"]["n_patients"] == 12 and report["cv"]["n_clips"] == 48  # type: ignore[index]
    assert report["pooled_clips"] == 12 and report["site_clips"] == 48
    assert report["cv"]["accuracy"]["mean"] > 0.6  # type: ignore[index]


def test_the_champion_is_scored_on_the_same_test_clips() -> None:
    data = _data(12)
    report = site_evaluate(data, RECIPE, _always(1), seeds=(0,), k=4)
    champion = report["champion_cv"]
    # A champion that always says 1 is right on exactly the quarter of clips scored 1.
    expected = classification_report(data.y, np.ones(len(data.y), int))
    assert champion["accuracy"]["mean"] == pytest.approx(expected["accuracy"]) == 0.25  # type: ignore[index]
    assert champion["within1"]["mean"] == pytest.approx(0.75)  # type: ignore[index]
    assert champion["clips_seen_in_training"] == 0 and champion["in_sample"] is False  # type: ignore[index]
    seen = site_evaluate(_data(12, seen=True), RECIPE, _always(1), seeds=(0,), k=4)["champion_cv"]
    assert seen["clips_seen_in_training"] == 48 and seen["in_sample"] is True  # type: ignore[index]
    unknown = SiteData(data.feats, data.y, data.findings, data.groups, data.site, None)
    assert site_evaluate(unknown, RECIPE, _always(1), seeds=(0,), k=4)["champion_cv"]["in_sample"] is None  # type: ignore[index]


def test_learning_curve_points_and_subsampling() -> None:
    data = _data(12, pooled_patients=2)
    report = site_evaluate(data, RECIPE, _always(0), seeds=(0,), k=4)
    curve = report["learning_curve"]
    assert [p["fraction"] for p in curve] == [0.25, 0.5, 0.75, 1.0]  # type: ignore[index]
    assert [p["patients"] for p in curve] == [3, 6, 9, 12]  # type: ignore[index]
    assert curve[-1]["accuracy"] == report["cv"]["accuracy"]  # type: ignore[index]
    tr, _te = cv_splits(data.y, data.groups, data.site, 4, 0)[0]
    half = _subsample(tr, data, 0.5, seed=7)
    site_patients = {data.groups[i] for i in tr if data.site[i]}
    kept = {data.groups[i] for i in half if data.site[i]}
    assert len(kept) == round(0.5 * len(site_patients)) and kept <= site_patients
    assert {i for i in tr if not data.site[i]} <= set(half.tolist())  # pooled clips always train
    assert np.array_equal(_subsample(tr, data, 0.5, seed=7), half)  # seeded


def test_too_few_readings_are_refused_with_the_reason() -> None:
    with pytest.raises(SiteDataError, match="9 patients with signed readings \\(18 clips\\); a site model needs at "
                                            "least 10"):
        site_data_check([f"p{i // 2}" for i in range(18)], [i % 4 for i in range(18)])
    with pytest.raises(SiteDataError, match="every signed reading has score 2"):
        site_data_check([f"p{i}" for i in range(12)], [2] * 12)
    with pytest.raises(SiteDataError):
        site_evaluate(_data(8), RECIPE, _always(0), seeds=(0,), k=4)


def test_site_fit_trains_on_every_labelled_clip() -> None:
    data = _data(12, pooled_patients=2)
    bundle = site_fit(data, RECIPE)
    acc = np.mean([bundle.predict(f)["clip_score"] == t for f, t in zip(data.feats, data.y, strict=True)])
    assert acc > 0.8


def test_cv_fits_without_frame_heads_give_the_same_clip_scores() -> None:
    data = _data(12)
    full = fit_bundle(data.feats, data.y, data.findings, RECIPE, seed=0)
    fast = fit_bundle(data.feats, data.y, data.findings, RECIPE, seed=0, frame_heads=False)
    for feat in data.feats[:12]:
        a, b = full.predict(feat), fast.predict(feat)
        assert a["clip_score"] == b["clip_score"]
        assert np.array_equal(a["clip_probs"], b["clip_probs"])  # type: ignore[arg-type]
    assert np.allclose(fast.predict(data.feats[0])["frame_probs"], 0.25)  # blank heads: no frame opinion
    # A recipe whose clip score aggregates the frames always gets its frame heads.
    uninorm = Recipe.from_dict({**RECIPE.to_dict(), "aggregator": "argmax_mean"})
    assert clip_score_reads_frame_heads(uninorm) and not clip_score_reads_frame_heads(RECIPE)
    assert not np.allclose(fit_bundle(data.feats, data.y, data.findings, uninorm, frame_heads=False)
                           .predict(data.feats[0])["frame_probs"], 0.25)
