"""Small (seconds) training tests on synthetic features - no images, no shared data."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from scoring.core.nets import FINDINGS
from scoring.core.train import (
    Bundle,
    Recipe,
    cross_validate,
    fit_bundle,
    fit_with_noise_filter,
    ridge_probs,
    vote,
)


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


RECIPE = Recipe(hand=False, clip_c=1.0, ridge_alpha=3.0)


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
