"""Pure dashboard computations: pairing, unit, trend and flag rules pinned by hand."""
from __future__ import annotations

import datetime as dt

import pytest

from patients.dashboards import stats

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def h(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


# --- pairing ---------------------------------------------------------------------------------


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
