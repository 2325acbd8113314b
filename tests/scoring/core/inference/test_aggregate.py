from __future__ import annotations

import numpy as np
import pytest
import torch

from scoring.core.inference.aggregate import (
    UninormAggregator,
    argmax_mean,
    get_aggregator,
    max_argmax,
    mode,
    uninorm_fold,
    uninorm_pair,
)

P = np.array([
    [0.7, 0.2, 0.1, 0.0],
    [0.1, 0.6, 0.2, 0.1],
    [0.6, 0.3, 0.1, 0.0],
    [0.0, 0.1, 0.3, 0.6],
])


def test_argmax_mean() -> None:
    probs, score = argmax_mean(P)
    assert probs == pytest.approx([0.35, 0.3, 0.175, 0.175])
    assert score == 0


def test_max_argmax_and_mode() -> None:
    votes, score = max_argmax(P)  # frame argmax: 0, 1, 0, 3
    assert score == 3
    assert votes == pytest.approx([0.5, 0.25, 0.0, 0.25])
    votes, score = mode(P)
    assert score == 0
    # tie between 0 and 1 -> the lower score
    assert mode(np.array([[0.9, 0.1, 0, 0], [0.1, 0.9, 0, 0]]))[1] == 0


def _u(x: float, y: float, e: float) -> float:
    return float(uninorm_pair(torch.tensor(x), torch.tensor(y), torch.tensor(e)))


def test_uninorm_pair_hand_computed() -> None:
    # both below e=0.5: e*T(x/e, y/e) = 0.5 * (0.2/0.5) * (0.4/0.5) = 0.16
    assert _u(0.2, 0.4, 0.5) == pytest.approx(0.16)
    # both above: x'=(0.6-0.5)/0.5=0.2, y'=(0.8-0.5)/0.5=0.6; S=0.2+0.6-0.12=0.68; 0.5+0.5*0.68=0.84
    assert _u(0.6, 0.8, 0.5) == pytest.approx(0.84)
    # mixed: min
    assert _u(0.3, 0.9, 0.5) == pytest.approx(0.3)
    # e is the neutral element, 0 absorbs below, 1 absorbs above
    for x in (0.1, 0.45, 0.7, 0.95):
        assert _u(x, 0.5, 0.5) == pytest.approx(x)
    assert _u(0.0, 0.3, 0.5) == pytest.approx(0.0)
    assert _u(1.0, 0.8, 0.5) == pytest.approx(1.0)
    # asymmetric e=0.2: both below -> 0.1*0.15/0.2 = 0.075
    assert _u(0.1, 0.15, 0.2) == pytest.approx(0.075)
    # commutative
    assert _u(0.35, 0.75, 0.4) == pytest.approx(_u(0.75, 0.35, 0.4))


def test_uninorm_fold_hand_computed() -> None:
    e = torch.tensor([0.5, 0.5])
    probs = torch.tensor([[0.6, 0.4], [0.8, 0.2], [0.7, 0.3]])
    out = uninorm_fold(probs, e).tolist()
    # class 0: U(0.6,0.8)=0.84; U(0.84,0.7): x'=0.68,y'=0.4 -> S=0.808 -> 0.904
    # class 1: U(0.4,0.2)=0.16; U(0.16,0.3)=0.16*0.3/0.5=0.096
    assert out == pytest.approx([0.904, 0.096])


def test_uninorm_aggregator_learns_and_stays_finite() -> None:
    rng = np.random.default_rng(0)
    clips, labels = [], []
    for i in range(24):
        y = i % 4
        p = rng.dirichlet(np.ones(4), size=10) * 0.5
        p[:, y] += 0.5
        clips.append(p)
        labels.append(y)
    agg = UninormAggregator(4).fit(clips, labels, steps=60, lr=0.1)
    e = agg.e.detach().numpy()
    assert np.all((e > 0) & (e < 1))
    acc = np.mean([agg.aggregate(c)[1] == y for c, y in zip(clips, labels, strict=True)])
    assert acc >= 0.75
    probs, score = get_aggregator("uninorm", agg)(clips[0])
    assert np.isfinite(probs).all() and probs.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        get_aggregator("uninorm")
    with pytest.raises(ValueError):
        get_aggregator("nope")
