"""Pure dashboard computations: unit, trend and flag rules pinned by hand."""
from __future__ import annotations

import datetime as dt

import pytest

from patients.dashboards import stats

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def h(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


# --- units and parameters --------------------------------------------------------------------


def test_units() -> None:
    from patients.records.units import KPA_TO_MMHG

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
