"""Pure dashboard computations: figures equal scipy's, pairing and unit rules pinned by hand."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from scipy import stats as sps

from patients.dashboards import stats

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def h(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


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
    assert stats.rank_average([3.0, 1.0, 3.0, 2.0]) == list(sps.rankdata([3, 1, 3, 2]))


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


# --- pairing ---------------------------------------------------------------------------------


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


def test_pairing_takes_the_nearest_gas_within_the_window() -> None:
    exams = [stats.ExamPoint("e1", "p1", h(0), 10), stats.ExamPoint("e2", "p1", h(48), 20),
             stats.ExamPoint("e3", "p1", h(100), 30)]
    gases = [stats.GasPoint("far-before", "p1", h(-11), 41.0), stats.GasPoint("near-after", "p1", h(3), 42.0),
             stats.GasPoint("outside", "p1", h(48 + 12.5), 43.0), stats.GasPoint("edge", "p1", h(100 - 12), 44.0)]
    pairs = stats.pair_nearest(exams, gases, 12)
    assert [(p.exam, p.gas) for p in pairs] == [("e1", "near-after"), ("e3", "edge")]  # e2: only gas 12.5 h away
    assert pairs[0].hours_apart == 3.0 and pairs[1].hours_apart == -12.0
    assert pairs[0].score == 10 and pairs[0].value == 42.0


def test_pairing_tie_goes_to_the_earlier_gas_and_one_gas_per_exam() -> None:
    exams = [stats.ExamPoint("e1", "p1", h(0), 5)]
    gases = [stats.GasPoint("after", "p1", h(2), 50.0), stats.GasPoint("before", "p1", h(-2), 40.0),
             stats.GasPoint("later", "p1", h(5), 60.0)]
    pairs = stats.pair_nearest(exams, gases, 12)
    assert len(pairs) == 1 and pairs[0].gas == "before" and pairs[0].hours_apart == -2.0


def test_pairing_stays_within_patient_and_skips_unknown_values() -> None:
    exams = [stats.ExamPoint("e1", "p1", h(0), 5), stats.ExamPoint("e2", "p2", h(0), 7),
             stats.ExamPoint("e3", "p1", h(1), None)]
    gases = [stats.GasPoint("g-p2", "p2", h(0.5), 50.0), stats.GasPoint("g-p1-null", "p1", h(0.1), None),
             stats.GasPoint("g-p1", "p1", h(4), 45.0)]
    pairs = stats.pair_nearest(exams, gases, 6)
    assert [(p.exam, p.gas, p.group) for p in pairs] == [("e1", "g-p1", "p1"), ("e2", "g-p2", "p2")]


def test_gas_within_window_for_gaps() -> None:
    times = [h(-20), h(30)]
    assert not stats.has_gas_within(h(0), times, 12)
    assert stats.has_gas_within(h(0), times, 20)
    assert stats.has_gas_within(h(40), times, 12)
    assert not stats.has_gas_within(h(0), [], 12)


# --- units and parameters --------------------------------------------------------------------


def test_units() -> None:
    from patients.models import KPA_TO_MMHG

    assert stats.KPA_TO_MMHG == KPA_TO_MMHG == 7.50062
    assert stats.convert_pressure(75.0062, "kPa") == pytest.approx(10.0)
    assert stats.convert_pressure(40.0, "mmHg") == 40.0
    assert stats.convert_pressure(None, "kPa") is None
    with pytest.raises(ValueError):
        stats.convert_pressure(1.0, "bar")
    assert stats.pf_ratio(80.0, 0.4) == 200.0
    assert stats.pf_ratio(80.0, None) is None and stats.pf_ratio(None, 0.5) is None


def test_parse_params() -> None:
    assert stats.parse_correlation_params({}) == stats.CorrelationParams("luss", "paco2", 12.0, "mmHg")
    p = stats.parse_correlation_params({"score": "mean", "gas": "pao2", "window_hours": "6", "unit": "kpa"})
    assert (p.score, p.gas, p.window_hours, p.unit) == ("mean", "pao2", 6.0, "kPa")
    assert stats.parse_correlation_params({"gas": "pf", "unit": "kPa"}).unit == "mmHg"  # P/F is always mmHg
    for bad in ({"score": "x"}, {"gas": "ph"}, {"unit": "bar"}, {"window_hours": "0"}, {"window_hours": "abc"},
                {"window_hours": "nan"}):
        with pytest.raises(ValueError):
            stats.parse_correlation_params(bad)


# --- trends and flags ------------------------------------------------------------------------


def test_trend_and_threshold() -> None:
    assert stats.trend(20, 15) == stats.Trend(5, "↑", "worse")
    assert stats.trend(10, 15) == stats.Trend(-5, "↓", "better")
    assert stats.trend(10, 10).arrow == "→"
    assert stats.trend(10, None) == stats.Trend(None, "", "")
    assert stats.default_threshold(12) == 18 and stats.default_threshold(8) == 12
    assert stats.threshold_crossing(17, 18, 18) == "up"
    assert stats.threshold_crossing(18, 17, 18) == "down"
    assert stats.threshold_crossing(18, 20, 18) == ""
    assert stats.threshold_crossing(None, 20, 18) == ""


def test_exam_flags() -> None:
    exams = [
        stats.ExamSummary("a", h(0), 10, {"R1": 0, "R2": 1, "L1": None}),
        stats.ExamSummary("b", h(24), None, {}),  # not scored: skipped, not treated as zeros
        stats.ExamSummary("c", h(48), 19, {"R1": 2, "R2": 2, "L1": 3}),
        stats.ExamSummary("d", h(72), 12, {"R1": 1, "R2": 2, "L1": 3}),
    ]
    flags = stats.exam_flags(exams, threshold=18)
    assert [(f.kind, f.exam) for f in flags] == [("zone_worsened", "c"), ("threshold_up", "c"), ("threshold_down", "d")]
    assert flags[0].zones == ("R1",)  # L1 was unknown before; R2 rose by 1 only
    assert "R1 0→2" in flags[0].text
    assert stats.worsened_zones({"R1": 1}, {"R1": 3, "R2": 3}) == ["R1"]
    assert stats.day_since(dt.date(2026, 3, 5), dt.date(2026, 3, 1)) == 4
    assert stats.day_since(dt.date(2026, 3, 5), None) is None
