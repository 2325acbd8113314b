from __future__ import annotations

import numpy as np
import pytest

from scoring.core.metrics import calibration, classification_report, confusion, quadratic_kappa, spearman


def test_report_hand_computed() -> None:
    y = [0, 0, 1, 2, 3, 3]
    p = [0, 1, 1, 3, 1, 3]
    r: dict = classification_report(y, p)
    assert r["accuracy"] == pytest.approx(3 / 6)
    assert r["within1"] == pytest.approx(5 / 6)
    assert r["confusion"] == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 1, 0, 1]]
    assert r["sensitivity"] == pytest.approx([0.5, 1.0, 0.0, 0.5])
    # class 1: tn = 6 - 1 tp - 0 fn - 2 fp = 3 -> spec 3/5
    assert r["specificity"][1] == pytest.approx(3 / 5)
    # F1: c0 p=1 r=.5 -> 2/3; c1 p=1/3 r=1 -> .5; c2 0; c3 p=.5 r=.5 -> .5
    assert r["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 0 + 0.5) / 4)


def test_qwk_and_spearman() -> None:
    assert quadratic_kappa([0, 1, 2, 3], [0, 1, 2, 3]) == pytest.approx(1.0)
    # hand: O = off-diagonal at (0,1),(1,0): w=1/9 each -> sum wO = 2/9;
    # E = outer([1,1,0,0],[1,1,0,0])/2 -> 0.5 at (0,0),(0,1),(1,0),(1,1) -> sum wE = 1/9
    assert quadratic_kappa([0, 1], [1, 0]) == pytest.approx(1 - (2 / 9) / (1 / 9))
    assert spearman([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) == 0.0
    assert confusion([0, 3], [3, 3]).sum() == 2


def test_calibration_hand_computed() -> None:
    # Confidence shown = probability of the predicted score (the vote may pick a non-arg-max).
    y = [0, 1, 2, 3]
    pred = [0, 1, 1, 3]
    probs = [[0.95, 0.05, 0.0, 0.0],   # conf 0.95, right  -> bin 9
             [0.2, 0.3, 0.5, 0.0],     # conf 0.30 (pred 1, not the arg-max), right -> bin 3
             [0.0, 0.35, 0.65, 0.0],   # conf 0.35, wrong  -> bin 3
             [0.0, 0.0, 0.0, 1.0]]     # conf 1.00, right  -> last bin (9)
    cal = calibration(y, pred, probs)
    # bin 3: mean conf 0.325, accuracy 0.5 -> |.| 0.175, weight 0.5; bin 9: conf 0.975, acc 1 -> 0.025, weight 0.5
    assert cal["ece"] == pytest.approx(0.5 * 0.175 + 0.5 * 0.025)
    brier = [0.05**2 + 0.05**2, 0.2**2 + 0.7**2 + 0.5**2, 0.35**2 + 0.35**2, 0.0]
    assert cal["brier"] == pytest.approx(sum(brier) / 4)
    uniform = calibration([0, 1, 2, 3], [0, 0, 0, 0], np.full((4, 4), 0.25))
    assert uniform["brier"] == pytest.approx(0.75) and uniform["ece"] == pytest.approx(0.0)
    rep = classification_report(y, pred, probs=probs)
    assert rep["ece"] == cal["ece"] and rep["brier"] == cal["brier"]
    with pytest.raises(ValueError, match="probs must be"):
        calibration(y, pred, [[1.0, 0, 0, 0]])
