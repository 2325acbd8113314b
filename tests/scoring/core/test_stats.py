from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from scoring.core import stats
from scoring.core.stats import calibration, classification_report, confusion, quadratic_kappa, spearman


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


# --- correlation -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed,n", [(0, 3), (1, 5), (2, 12), (3, 40)])
def test_correlation_equals_scipy(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    xs = rng.integers(0, 36, size=n).astype(float)
    ys = 36 + 0.45 * xs + rng.normal(0, 3, size=n)
    got = stats.correlate(list(xs), list(ys))
    r, p = sps.pearsonr(xs, ys)
    rho, sp = sps.spearmanr(xs, ys)
    lr = sps.linregress(xs, ys)
    assert got.n == n
    assert got.pearson_r == pytest.approx(r, abs=1e-12)
    assert got.p_value == pytest.approx(p, rel=1e-9, abs=1e-15)
    assert got.spearman_rho == pytest.approx(rho, abs=1e-12)
    assert got.spearman_p == pytest.approx(sp, rel=1e-9, abs=1e-15)
    assert got.slope == pytest.approx(lr.slope, rel=1e-12)
    assert got.intercept == pytest.approx(lr.intercept, rel=1e-9, abs=1e-12)


def test_correlation_with_ties_equals_scipy_spearman() -> None:
    xs = [0, 0, 1, 1, 1, 2, 3, 3]
    ys = [40.0, 41.0, 40.0, 45.0, 44.0, 47.0, 50.0, 49.0]
    got = stats.correlate(xs, ys)
    rho, sp = sps.spearmanr(xs, ys)
    assert got.spearman_rho == pytest.approx(rho, abs=1e-12)
    assert got.spearman_p == pytest.approx(sp, rel=1e-9)
    # Ties share their average rank (rankdata 'average'), ranked here by hand.
    rx, ry = [1.5, 1.5, 4, 4, 4, 6, 7.5, 7.5], [1.5, 3, 1.5, 5, 4, 6, 8, 7]
    assert got.spearman_rho == pytest.approx(np.corrcoef(rx, ry)[0, 1], abs=1e-12)


def test_fisher_ci_by_hand() -> None:
    # r = 0.5, n = 28: z = atanh(0.5) = 0.549306, se = 1/5 = 0.2, z +- 1.959964 * 0.2.
    low, high = stats.fisher_ci(0.5, 28)
    assert low == pytest.approx(math.tanh(0.5493061443 - 0.3919927969), abs=1e-9)
    assert high == pytest.approx(math.tanh(0.5493061443 + 0.3919927969), abs=1e-9)
    assert (round(low, 4), round(high, 4)) == (0.1560, 0.7358)
    # scipy >= 1.11 gives the same interval.
    xs = np.arange(28, dtype=float)
    ys = xs + np.random.default_rng(5).normal(0, 6, 28)
    res = sps.pearsonr(xs, ys)
    ci = res.confidence_interval(0.95)
    got = stats.correlate(list(xs), list(ys))
    assert (got.ci_low, got.ci_high) == (pytest.approx(ci.low, abs=1e-9), pytest.approx(ci.high, abs=1e-9))


def test_small_or_degenerate_samples_give_no_figures() -> None:
    for n in (0, 1, 2):
        got = stats.correlate([1.0] * n, [2.0] * n)
        assert got.n == n and got.pearson_r is None and got.p_value is None and got.ci_low is None
        assert "at least 3" in got.message
    constant = stats.correlate([1.0, 1.0, 1.0], [3.0, 4.0, 5.0])
    assert constant.pearson_r is None and constant.slope is None and "constant" in constant.message
    assert stats.fisher_ci(0.3, 3) == (-1.0, 1.0)
    perfect = stats.correlate([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0])
    assert perfect.pearson_r == pytest.approx(1.0) and perfect.p_value == 0.0
    assert (perfect.ci_low, perfect.ci_high) == (perfect.pearson_r, perfect.pearson_r)
    with pytest.raises(ValueError):
        stats.correlate([1.0], [1.0, 2.0])


def test_three_collinear_pairs_leave_the_interval_open() -> None:
    # No degree of freedom for the Fisher interval (n - 3 = 0): scipy's answer, without a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = stats.correlate([0.0, 0.0, 3.0], [36.0, 36.0, 33.0])
    with np.errstate(invalid="ignore"):
        ci = sps.pearsonr([0.0, 0.0, 3.0], [36.0, 36.0, 33.0]).confidence_interval(0.95)
    assert got.pearson_r == pytest.approx(-1.0) and (got.ci_low, got.ci_high) == (ci.low, ci.high) == (-1.0, 1.0)


def test_repeated_measures_interval_and_p_match_rmcorr() -> None:
    # R rmcorr's README example (Bland & Altman 1995, PaCO2 vs pH, 47 pairs of 8 subjects):
    # r = -0.5067697, df = 38, p = 0.0008471081, 95 % CI -0.7067146 to -0.2318631.
    r, df = -0.5067697, 38
    low, high = stats.fisher_ci(r, df + 2)
    assert (low, high) == pytest.approx((-0.7067146, -0.2318631), abs=2e-7)
    assert stats.correlation_p_value(r, df + 2) == pytest.approx(0.0008471081, rel=1e-5)


def test_repeated_measures_by_hand() -> None:
    # Patient a: x 0,1,2 -> y 10,12,13; patient b: x 1,3 -> y 20,21; patient c has one pair (ignored).
    xs = [0, 1, 2, 1, 3, 2]
    ys = [10, 12, 13, 20, 21, 99]
    groups = ["a", "a", "a", "b", "b", "c"]
    rm = stats.repeated_measures_correlation(xs, ys, groups)
    # Centred: a x' -1,0,1 y' -5/3,1/3,4/3; b x' -1,1 y' -1/2,1/2.
    sxy = (5 / 3 + 0 + 4 / 3) + (0.5 + 0.5)  # 4
    sxx = 2 + 2
    syy = (25 + 1 + 16) / 9 + 0.5
    assert (rm.n, rm.patients, rm.df) == (5, 2, 2)
    assert rm.r == pytest.approx(sxy / math.sqrt(sxx * syy))
    assert rm.slope == pytest.approx(sxy / sxx)
    assert rm.p_value == pytest.approx(stats.correlation_p_value(rm.r, 4))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_repeated_measures_equals_ancova(seed: int) -> None:
    """r_rm from the ANCOVA with one intercept per patient, computed independently by least squares."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(6), rng.integers(2, 6, size=6))
    base = rng.normal(0, 10, size=6)[groups]  # patients differ a lot: the pooled r is misleading
    x = rng.integers(0, 37, size=len(groups)).astype(float)
    y = base + 0.3 * x + rng.normal(0, 2, size=len(groups))
    rm = stats.repeated_measures_correlation(x.tolist(), y.tolist(), groups.tolist())
    dummies = (groups[:, None] == np.arange(6)[None]).astype(float)
    full = np.column_stack([dummies, x])
    resid_full = y - full @ np.linalg.lstsq(full, y, rcond=None)[0]
    resid_groups = y - dummies @ np.linalg.lstsq(dummies, y, rcond=None)[0]
    ss_error, ss_total_within = float(resid_full @ resid_full), float(resid_groups @ resid_groups)
    beta = np.linalg.lstsq(full, y, rcond=None)[0][-1]
    expected = math.copysign(math.sqrt((ss_total_within - ss_error) / ss_total_within), beta)
    assert rm.r == pytest.approx(expected) and rm.slope == pytest.approx(beta)
    assert rm.df == len(groups) - 6 - 1
    t = rm.r * math.sqrt(rm.df / (1 - rm.r**2))
    assert rm.p_value == pytest.approx(2 * sps.t.sf(abs(t), rm.df))


def test_repeated_measures_without_enough_data_says_why() -> None:
    one_each = stats.repeated_measures_correlation([1, 2, 3, 4], [1, 2, 3, 4], ["a", "b", "c", "d"])
    assert one_each.r is None and one_each.df == 0 and "two or more" in one_each.message
    flat = stats.repeated_measures_correlation([1, 1, 1, 2, 2, 2], [5, 6, 7, 8, 9, 9], list("aaabbb"))
    assert flat.r is None and "within any patient" in flat.message
    with pytest.raises(ValueError, match="differ in length"):
        stats.repeated_measures_correlation([1, 2], [1, 2], ["a"])


def test_normalised_entropy_by_hand() -> None:
    """H(p) / log K: 0 for a sure reading, 1 for four equal probabilities, and the two readings
    that 1 - max p cannot tell apart (both 0.5) come out 0.5 and 0.8805."""
    assert stats.normalised_entropy([1, 0, 0, 0]) == 0.0
    assert stats.normalised_entropy([0.25] * 4) == pytest.approx(1.0)
    assert stats.normalised_entropy([0.5, 0.5, 0, 0]) == pytest.approx(0.5)  # log 2 / log 4
    spread = -(0.5 * math.log(0.5) + 2 * 0.2 * math.log(0.2) + 0.1 * math.log(0.1)) / math.log(4)
    assert stats.normalised_entropy([0.5, 0.2, 0.2, 0.1]) == pytest.approx(spread) == pytest.approx(0.88048, abs=1e-5)
    assert stats.normalised_entropy([0.50001, 0.49999, 0, 0]) == pytest.approx(0.5)  # rounded, renormalised
    assert stats.normalised_entropy([2, 2, 0, 0]) == pytest.approx(0.5)
    for bad in ([1.0], [0.0, 0.0], [-0.1, 1.1], [float("nan"), 1.0]):
        with pytest.raises(ValueError):
            stats.normalised_entropy(bad)


def test_percentile_ranks_share_ties() -> None:
    assert stats.percentile_ranks([3.0, 1.0, 2.0, 10.0]) == [0.75, 0.25, 0.5, 1.0]
    assert stats.percentile_ranks([1.0, 2.0, 2.0, 5.0]) == [0.25, 0.625, 0.625, 1.0]  # ranks 2 and 3 share 2.5
    assert stats.percentile_ranks([7.0]) == [1.0] and stats.percentile_ranks([]) == []
