"""Small (seconds) training tests on synthetic features - no images, no shared data."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from scoring.core.features.featurizer import hires_columns, hires_dim
from scoring.core.features.recipe import Recipe
from scoring.core.inference.bundle import Bundle, ridge_probs, vote
from scoring.core.labels import FINDINGS
from scoring.core.models.lite0 import LITE0_BLOCK_CHANNELS
from scoring.core.training.cv import cross_validate, fit_with_noise_filter
from scoring.core.training.fitting import fit_bundle


def _synthetic(n_clips: int = 48, d: int = 12, seed: int = 0, shift: float = 1.5) -> tuple[list[dict[str, np.ndarray]], np.ndarray,
                                                                        np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    feats: list[dict[str, np.ndarray]] = []
    ys: list[int] = []
    for i in range(n_clips):
        label = i % 4
        t = int(rng.integers(5, 9))
        f = rng.normal(0, 1, (t, d)).astype(np.float32)
        f[:, 0] += shift * label  # the score is readable from feature 0
        summary = rng.normal(0, 1, 3).astype(np.float32)
        summary[0] += shift * label
        feats.append({"frame": f, "summary": summary})
        ys.append(label)
    y = np.array(ys)
    fnd = np.full((n_clips, len(FINDINGS)), -1, np.int8)
    fnd[:, 0] = (y == 0).astype(np.int8)
    fnd[:, 1] = (y >= 1).astype(np.int8)
    groups = [f"p{i // 3}" for i in range(n_clips)]
    return feats, y, fnd, groups


RECIPE = Recipe(hand=False, clip_c=1.0, ridge_alpha=3.0, hires_size=0, members=("lr_all", "lr_cnn", "ridge"))
HIRES = Recipe(hand=False, clip_c=1.0, hires_c=1.0)  # default members hr:7, hr:4+7, hr:7+10


def _with_hires(feats: list[dict[str, np.ndarray]], y: np.ndarray, tap: int, seed: int = 0) -> None:
    """Add a hires descriptor whose tap-``tap`` block (only) carries the label."""
    rng = np.random.default_rng(seed)
    ch = list(LITE0_BLOCK_CHANNELS)
    dim = hires_dim(HIRES, ch)
    block = hires_columns(HIRES, ch, f"hr:{tap}")
    for f, label in zip(feats, y, strict=True):
        h = rng.normal(0, 1, dim).astype(np.float32)
        h[block[:5]] += 2.0 * label
        f["hires"] = h


def test_fit_predict_roundtrip() -> None:
    feats, y, fnd, _ = _synthetic()
    b = fit_bundle(feats, y, fnd, RECIPE, seed=0, cnn_dim=12)
    acc = np.mean([b.predict(f)["clip_score"] == t for f, t in zip(feats, y, strict=True)])
    assert acc > 0.8
    out = b.predict(feats[0])
    fp = np.asarray(out["frame_probs"])
    assert fp.shape == (len(feats[0]["frame"]), 4) and np.allclose(fp.sum(1), 1)
    assert np.asarray(out["frame_findings"]).shape == (len(feats[0]["frame"]), len(FINDINGS))
    # weights file round trip (plain tensors, weights_only loading)
    buf = io.BytesIO()
    torch.save(b.to_state(), buf)
    buf.seek(0)
    b2 = Bundle.from_state(torch.load(buf, weights_only=True))
    o2 = b2.predict(feats[0])
    assert np.allclose(np.asarray(o2["clip_probs"]), np.asarray(out["clip_probs"]))
    assert o2["clip_score"] == out["clip_score"]


def test_reproducible_with_seed() -> None:
    feats, y, fnd, _ = _synthetic()
    a = fit_bundle(feats, y, fnd, RECIPE, seed=3, cnn_dim=12)
    b = fit_bundle(feats, y, fnd, RECIPE, seed=3, cnn_dim=12)
    assert np.allclose(a.frame_sev.w, b.frame_sev.w)
    assert np.allclose(a.clip_members["lr_all"].w, b.clip_members["lr_all"].w)


@pytest.mark.parametrize("agg", ["argmax_mean", "mode", "max_argmax", "uninorm", "lr_all", "ridge"])
def test_aggregator_recipes(agg: str) -> None:
    feats, y, fnd, _ = _synthetic(24)
    r = Recipe.from_dict({**RECIPE.to_dict(), "aggregator": agg})
    b = fit_bundle(feats, y, fnd, r, seed=0, cnn_dim=12)
    out = b.predict(feats[1])
    assert out["clip_score"] in (0, 1, 2, 3)
    assert np.isclose(np.sum(np.asarray(out["clip_probs"])), 1.0)


def test_cross_validation_and_noise_filter() -> None:
    feats, y, fnd, groups = _synthetic(d=3, shift=3.0)
    y_noisy = y.copy()
    y_noisy[[0, 4]] = 3  # two label errors (true 0 -> 3)
    r = Recipe.from_dict({**RECIPE.to_dict(), "noise_filter": 2})
    b, keep = fit_with_noise_filter(feats, y_noisy, fnd, groups, r, seed=0)
    assert not keep[0] and not keep[4]
    assert keep.sum() >= len(y) - 12
    cv = cross_validate(feats, y, fnd, groups, RECIPE, seeds=(0, 1), k=3)
    acc: dict = cv["accuracy"]  # type: ignore[assignment]
    assert acc["mean"] > 0.7
    assert len(acc["per_seed"]) == 2


def test_vote_rule() -> None:
    p = lambda c, conf=0.7: np.eye(4)[c] * conf + (1 - conf) / 4  # noqa: E731
    assert vote([p(1), p(1), p(3)])[1] == 1  # majority
    assert vote([p(0, 0.95), p(2), p(3)])[1] == 0  # all differ, one confident >= 0.8
    assert vote([p(0), p(2), p(3)])[1] == 2  # all differ, none confident -> median
    probs, win = vote([p(0), p(2), p(3)])
    assert np.isclose(probs.sum(), 1.0) and int(np.argmax(probs)) == win == 2
    probs, win = vote([p(1), p(1, 0.9), p(3)])
    assert win == 1 and np.allclose(probs, (p(1) + p(1, 0.9)) / 2)


def test_ridge_probs() -> None:
    q = ridge_probs(np.array([1.0, 2.5]))
    assert q[0].argmax() == 1 and np.isclose(q[1, 2], q[1, 3])


def test_hires_layout() -> None:
    ch = list(LITE0_BLOCK_CHANNELS)
    assert ch[4] == 40 and ch[7] == 80 and ch[10] == 112
    # per tap: (mean, max) pooled x (mean over frames, std over frames, 3 summary images)
    assert hires_dim(HIRES, ch) == 2 * (40 + 80 + 112) * 5 == 2320
    assert hires_dim(RECIPE, ch) == 0
    c7 = hires_columns(HIRES, ch, "hr:7")
    assert c7[0] == 400 and len(c7) == 800 and np.all(np.diff(c7) == 1)
    c710 = hires_columns(HIRES, ch, "hr:7+10")
    assert len(c710) == 800 + 1120 and c710[0] == 400 and c710[-1] == 2319
    with pytest.raises(ValueError, match="taps \\[15\\]"):
        hires_columns(HIRES, ch, "hr:15")


def test_hires_members_vote_and_roundtrip() -> None:
    feats, y, fnd, _ = _synthetic(48, d=4, shift=0.0)  # the frame features carry no label
    _with_hires(feats, y, tap=7)
    b = fit_bundle(feats, y, fnd, HIRES, seed=0, cnn_dim=4)
    assert set(b.clip_members) == {"hr:7", "hr:4+7", "hr:7+10"}
    assert len(b.clip_members["hr:4+7"].mu) == 400 + 800
    out = b.predict(feats[5])
    assert set(out["members"]) == set(b.clip_members)  # type: ignore[call-overload]
    acc = np.mean([b.predict(f)["clip_score"] == t for f, t in zip(feats, y, strict=True)])
    assert acc > 0.9
    buf = io.BytesIO()
    torch.save(b.to_state(), buf)
    buf.seek(0)
    b2 = Bundle.from_state(torch.load(buf, weights_only=True))
    assert b2.recipe.hires_size == 224 and b2.recipe.hires_taps == (4, 7, 10)
    assert np.allclose(np.asarray(b2.predict(feats[5])["clip_probs"]), np.asarray(out["clip_probs"]))


def test_old_bundles_have_no_hires_view() -> None:
    d = RECIPE.to_dict()
    for k in ("hires_size", "hires_frames", "hires_taps", "hires_c"):
        d.pop(k)
    assert Recipe.from_dict(d).hires_size == 0
