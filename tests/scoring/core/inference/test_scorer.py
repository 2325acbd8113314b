"""The default weights: contract, metadata and its CV figures, and real clips scored as in training.

Accuracy figures are not asserted here: they belong to the evaluation report (``lus_eval``), the
benchmark and the model card. These tests check that the figures the weights carry are the ones
their cross-validation reported, and that scoring reads real clips exactly as training did.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from scoring.core.inference.scorer import DEFAULT_WEIGHTS, WEIGHTS_DIR, load_scorer
from scoring.core.stats import classification_report

#: Every figure training's cross-validation writes for each metric (mean, sd and per seed).
CV_METRICS = ("accuracy", "within1", "spearman", "spearman_expected", "qwk", "macro_f1", "ece", "brier")


@pytest.fixture(scope="module")
def scorer():  # type: ignore[no-untyped-def]
    return load_scorer()


def _fan(t: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = 180, 200
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy + 40, xx - w / 2)
    fan = (r > 50) & (r < 210) & (np.abs(np.arctan2(xx - w / 2, yy + 40)) < 0.7)
    f = np.zeros((t, h, w), np.uint8)
    for i in range(t):
        f[i][fan] = rng.integers(10, 180, fan.sum())
    f[:, 3:10, 3:40] = 255  # burned-in text
    return f


def test_contract(scorer) -> None:  # type: ignore[no-untyped-def]
    frames = _fan()
    r = scorer.score_clip(frames)
    assert r.frame_probs.shape == (6, 4) and np.allclose(r.frame_probs.sum(1), 1.0)
    assert r.frame_scores.shape == (6,) and r.frame_scores.dtype.kind == "i"
    assert set(r.frame_scores.tolist()) <= {0, 1, 2, 3}
    assert r.clip_probs.shape == (4,) and np.isclose(r.clip_probs.sum(), 1.0)
    assert isinstance(r.clip_score, int) and 0 <= r.clip_score <= 3
    assert int(np.argmax(r.clip_probs)) == r.clip_score
    assert set(r.findings) == {"a_lines", "b_lines", "confluent_b_lines", "consolidation",
                               "pleural_irregularity", "effusion"}
    assert all(0.0 <= v <= 1.0 for v in r.findings.values())
    assert len(r.six_class.frame_values) == 6 and 0.0 <= r.six_class.mean <= 4.0
    assert isinstance(scorer.version, str) and scorer.version and r.model == scorer.version
    assert r.aggregator == scorer.recipe.aggregator
    d = r.to_dict()
    assert d["frames"] == 6 and d["clip_score"] == r.clip_score
    # batching an exam gives the same result as clip by clip
    other = _fan(4, seed=1)
    batch = scorer.score_clips([frames, other])
    assert np.allclose(batch[0].frame_probs, r.frame_probs, atol=1e-5)
    assert batch[1].frame_probs.shape == (4, 4)
    # a single still image and an RGB clip are accepted
    assert scorer.score_clip(frames[0]).frame_probs.shape == (1, 4)
    rgb = np.repeat(frames[..., None], 3, axis=3)
    assert scorer.score_clip(rgb).frame_probs.shape == (6, 4)


def test_gradcam_explains_the_clip_score_on_the_frames_the_clip_model_read(scorer) -> None:  # type: ignore[no-untyped-def]
    frames = _fan(10)
    r = scorer.score_clip(frames)
    g = scorer.gradcam(frames)
    assert g.model == "clip-heads" and g.target == r.clip_score
    # The hires view's 4 evenly spaced frames of 10: round(linspace(0, 9, 4)).
    assert g.indices == (0, 3, 6, 9) and len(g.maps) == 4
    voters = tuple(m for m in scorer.recipe.members if int(np.argmax(r.members[m])) == r.clip_score)
    assert g.members == voters
    p = float(r.clip_probs[r.clip_score])  # the probability the page shows beside the score
    assert g.logit == pytest.approx(np.log(p / (1 - p)), abs=1e-4)
    assert g.summary_share is not None and 0.0 < g.summary_share < 1.0
    for m in g.maps:
        assert m.shape == frames.shape[1:]
        assert m.dtype == np.float32 and np.isfinite(m).all()
        assert m.min() >= 0.0 and m.max() <= 1.0
        assert m[3:10, 3:40].max() == 0.0  # nothing on the burned-in text outside the sector
    assert max(float(m.max()) for m in g.maps) == 1.0  # one scale for the four frames
    other = (r.clip_score + 1) % 4
    forced = scorer.gradcam(frames, target=other)
    assert forced.target == other and forced.indices == g.indices
    assert not all(np.allclose(a, b) for a, b in zip(forced.maps, g.maps, strict=True))
    assert scorer.gradcam(frames[:1]).indices == (0,)  # a still image: its one frame, read four times


def test_metadata_and_its_cv_figures(scorer) -> None:  # type: ignore[no-untyped-def]
    meta = scorer.meta
    for key in ("version", "architecture", "preprocess", "classes", "findings", "training_patients",
                "cv", "seed", "command", "backbone_sha256"):
        assert key in meta, key
    assert Path(DEFAULT_WEIGHTS).stat().st_size < 25e6
    cv = meta["cv"]
    assert cv["n_patients"] == 42
    assert cv["n_clips"] == 235 and cv["k"] == 5 and len(cv["seeds"]) == 3
    # Each metric: the mean and sd of the per-seed values the CV reported, one value per seed.
    for key in CV_METRICS:
        per_seed = cv[key]["per_seed"]
        assert len(per_seed) == len(cv["seeds"]), key
        assert cv[key]["mean"] == pytest.approx(np.mean(per_seed), abs=1e-12), key
        assert cv[key]["sd"] == pytest.approx(np.std(per_seed), abs=1e-12), key
    # Seed 0's figures are the classification report of seed 0's out-of-fold confusion matrix.
    confusion = np.asarray(cv["confusion_seed0"])
    assert confusion.shape == (4, 4) and confusion.sum() == cv["n_clips"]
    y_true = np.repeat(np.arange(4), confusion.sum(1))
    y_pred = np.concatenate([np.repeat(np.arange(4), row) for row in confusion])
    report = classification_report(y_true, y_pred)
    for key in ("accuracy", "within1", "spearman", "qwk", "macro_f1"):
        assert cv[key]["per_seed"][0] == pytest.approx(report[key], abs=1e-12), key
    assert cv["sensitivity_seed0"] == pytest.approx(report["sensitivity"], abs=1e-12)
    assert cv["specificity_seed0"] == pytest.approx(report["specificity"], abs=1e-12)
    # The experiment log's entry for these weights shows these figures (mean±sd, 3 decimals).
    log = (WEIGHTS_DIR / "EXPERIMENTS.md").read_text()
    row = next(line for line in log.splitlines() if line.startswith("|") and f"`{meta['version']}`" in line)
    shown = [(float(m), float(s)) for m, s in re.findall(r"(\d\.\d{3})±(\d\.\d{3})", row)][:3]
    assert shown == [(round(cv[k]["mean"], 3), round(cv[k]["sd"], 3)) for k in ("accuracy", "within1", "spearman")]


def test_real_clips_are_scored_as_training_saw_them(scorer, shared_data: Path,  # type: ignore[no-untyped-def]
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scoring a stored clip computes the features training fitted the heads on (no train/serve skew)."""
    from patients.imaging.core.reader import read_clip
    from scoring.core.training import caches
    from scoring.core.training.datasets import covid_blues_records

    recs = covid_blues_records(shared_data / "covid-blues")
    # Three clips per score from different patients: cheap (12 clips) and not cherry-picked
    # beyond that (first clips in file order).
    pick = []
    for s in range(4):
        seen: set[str] = set()
        for r in recs:
            if r.score == s and r.patient not in seen and len(seen) < 3:
                seen.add(r.patient)
                pick.append(r)
    served = scorer.features([read_clip(r.path).frames for r in pick])
    results = [scorer._result(f) for f in served]
    # The scanner and protocol the weights were trained on pass the out-of-domain check.
    assert all(res.in_domain for res in results), [round(res.domain_distance, 2) for res in results]
    # Training's path for one clip per score: the frame cache (decode, sector, uint8 canvases),
    # then the same featuriser. Only the rounding of the uint8 steps may differ (~5e-5 measured).
    monkeypatch.setattr(caches, "CACHE_ROOT", tmp_path)  # computed now, not read from an old cache
    one_per_score = [0, 3, 6, 9]
    trained = caches.featurize_records([pick[i] for i in one_per_score], scorer.recipe, fz=scorer.featurizer)
    for i, b in zip(one_per_score, trained, strict=True):
        for part in ("frame", "summary", "hires"):
            assert served[i][part].shape == b[part].shape, (pick[i].name, part)
            assert np.allclose(served[i][part], b[part], rtol=1e-3, atol=1e-3), (pick[i].name, part)
        seen_in_training = scorer.bundle.predict(b)
        assert np.allclose(results[i].clip_probs, seen_in_training["clip_probs"], atol=1e-4), pick[i].name
        assert results[i].clip_score == seen_in_training["clip_score"], pick[i].name
    assert {r.patient for r in pick} <= set(scorer.meta["training_patients"])


def test_out_of_domain_clips_are_flagged(scorer) -> None:  # type: ignore[no-untyped-def]
    """Phantoms and non-lung images from other machines are unlike the training clips."""
    from pydicom.data import get_testdata_file

    from patients.imaging.core.phantoms import phantom_cohort_clip
    from patients.imaging.core.reader import read_clip

    check = scorer.bundle.domain
    assert check is not None and check.n_training == 235 and 1.0 < check.threshold < 5.0
    assert scorer.meta["domain_check"]["threshold"] == pytest.approx(check.threshold, abs=1e-3)
    clips = [phantom_cohort_clip(s, seed=3, n_frames=12).frames for s in range(4)]
    clips += [read_clip(get_testdata_file(n)).frames for n in ("examples_rgb_color.dcm", "examples_palette.dcm")]
    results = scorer.score_clips(clips)
    assert [r.in_domain for r in results] == [False] * 6, [r.domain_distance for r in results]
    assert all(r.domain_distance > check.threshold for r in results)
    d = results[0].to_dict()["domain"]
    assert d["in_domain"] is False and d["threshold"] == pytest.approx(check.threshold, abs=1e-3)


def test_the_pipelined_exam_pass_gives_the_features_of_one_batched_pass(scorer) -> None:  # type: ignore[no-untyped-def]
    """``Scorer.features`` prepares clip i+1 in a thread while the CNN reads clip i; its features
    must be those of the plain pass over all clips at once (preprocessing, then one batched CNN
    pass, then the hand-crafted features), to float precision."""
    from scoring.core.features.preprocess import model_input_views

    clips = [_fan(t, seed) for t, seed in ((7, 1), (1, 2), (12, 3), (5, 4))]
    piped = scorer.features(clips)
    views = [model_input_views(c, scorer.cfg, scorer.recipe.hires_size) for c in clips]
    plain = scorer.featurizer.clips([v[0] for v in views], [v[2] for v in views])
    assert len(piped) == len(plain) == 4
    for a, b, c in zip(piped, plain, clips, strict=True):
        assert set(a) == set(b) == {"frame", "summary", "hires"}
        assert a["frame"].shape == (len(c), scorer.featurizer.frame_dim)
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-5)
    assert scorer.features([]) == []
